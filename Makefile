# imsfs — see README.md. `make run` mounts ./mnt with the embedded emulator; `make test` runs
# every test, real FUSE mounts included; `make fuzz` runs every fuzz target, FUZZTIME each.
GO        ?= go
BIN       := bin/imsfs
MNT       ?= mnt
CACHE_DIR ?= .imsfs-cache
# Tests talk to loopback only: the credential chain never asks an instance-metadata address.
export ALIBABA_CLOUD_ECS_METADATA_DISABLED := true
# The race detector needs cgo; use it wherever a C compiler is at hand.
RACE      ?= $(shell command -v gcc >/dev/null 2>&1 && echo -race)

.PHONY: build run test test-live bench fuzz lint clean

# The version imsfs --version names: the tag and commits since it (git describe), "-dirty" with
# uncommitted changes.
VERSION   := $(shell git describe --tags --always --dirty 2>/dev/null)

build:
	$(GO) build -ldflags "-X main.stamped=$(VERSION)" -o $(BIN) ./cmd/imsfs

run: build
	@test/deps.sh run
	@# A mount of ours that died (kill -9, a crash) answers "Transport endpoint is not connected"
	@# (to ls: stat may answer from the kernel's cache): clear it. A live one is another
	@# `make run`: leave it alone.
	@if grep -qs " $(abspath $(MNT)) " /proc/self/mountinfo; then \
	  if ls $(MNT) >/dev/null 2>&1; then \
	    echo "imsfs: $(MNT) is mounted already (another make run?): stop that one (Ctrl-C in its terminal, or umount $(MNT)) first" >&2; exit 1; \
	  fi; \
	  echo "imsfs: clearing a dead mount on $(MNT)"; umount -l $(MNT) 2>/dev/null || fusermount3 -uz $(MNT); \
	fi
	@mkdir -p $(MNT)
	@echo "imsfs: mounting $(MNT) with the embedded emulator (cache in $(CACHE_DIR)); Ctrl-C unmounts."
	@echo "In another terminal, try:"
	@echo "  head -c 3M /dev/urandom > /tmp/clip.mp4; cp /tmp/clip.mp4 $(MNT)/video/"
	@echo "  getfattr -n user.ims.status --only-values $(MNT)/video/clip.mp4   # queued, uploading, uploaded… then ready"
	@echo "  getfattr -d -m user.ims $(MNT)/video/clip.mp4                     # media_id, file_url, type, business_type…"
	@echo "  curl -s \"\$$(getfattr -n user.ims.file_url --only-values $(MNT)/video/clip.mp4)\" | cmp - /tmp/clip.mp4   # the file_url opens"
	@echo "  curl -s http://\$$(cat $(CACHE_DIR)/emulator/listen)/_emulator/media   # what the emulator holds (its port is not fixed)"
	@echo "  $(BIN) status $(MNT)                                               # what is not ready yet, and what was refused"
	@echo "  ls -l $(MNT)/library/video/                                          # every asset in IMS (the emulator's), clip.mp4 within 30 s"
	@echo
	$(BIN) mount --emulator --cache-dir $(CACHE_DIR) $(MNT)

# Tests that measure (the crash test, the fault test…) write their figures to FIGURES; they
# are printed after the run, passed or failed.
FIGURES   := $(CURDIR)/.test-figures

test: lint
	@test/deps.sh test
	@rm -f $(FIGURES)
	@# Tests that wait most of their time (a recorder writing every 3 s…) run side by side.
	@IMSFS_FIGURES=$(FIGURES) $(GO) test $(RACE) -count=1 -parallel 8 -timeout 20m ./...; status=$$?; \
	if [ -s $(FIGURES) ]; then echo; echo "Figures:"; sed 's/^/  /' $(FIGURES); fi; exit $$status

# Against the real IMS and OSS (not part of `make test`): a small video, an image and a subtitle,
# a rename, an overwrite and a delete, each checked through GetMediaInfo and its signed URL;
# every asset it makes is deleted.
test-live:
	@if [ -z "$$ALIBABA_CLOUD_ACCESS_KEY_ID" ] || [ -z "$$ALIBABA_CLOUD_ACCESS_KEY_SECRET" ] || [ -z "$$IMSFS_LIVE_REGION" ]; then \
	  echo "test-live: set ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET and IMSFS_LIVE_REGION (cn-shanghai, cn-beijing or cn-shenzhen) to run it against the real service"; \
	else \
	  test/deps.sh test && $(GO) test -tags live -count=1 -v -timeout 60m ./test/live/; \
	fi

# Throughput and latency against local disk and a direct SDK upload, as ratios; no -race.
bench:
	@test/deps.sh bench
	@IMSFS_BENCH=1 $(GO) test -count=1 -timeout 60m -run '^TestBench$$' -v ./test/ > .bench.out 2>&1; status=$$?; \
	grep -v -E '^(=== RUN|--- PASS|PASS|ok )' .bench.out; rm -f .bench.out; exit $$status

# Every fuzz target of the module (a func FuzzX in a _test.go file, wherever it is: a new one is
# found without a change here), one after another for FUZZTIME each: go test -fuzz takes one
# target of one package at a time. The mount point and the cache are not searched. An input
# that fails is written to the package's testdata/fuzz/FuzzX/: once fixed, commit it, and every
# go test runs it as a seed.
FUZZTIME  ?= 1m

fuzz:
	@targets=$$(find . \( -path './$(MNT)' -o -path './$(CACHE_DIR)' -o -name testdata -o -name .git \) -prune \
	    -o -name '*_test.go' -type f -print | xargs grep -HoE '^func Fuzz[A-Za-z0-9_]*\(' | \
	  sed -E 's|^(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*)\($$|\1 \2|' | sort -u); \
	if [ -z "$$targets" ]; then echo "fuzz: no fuzz targets"; exit 1; fi; \
	echo "$$targets" | while read -r dir name; do \
	  echo "fuzz: $$name ($$dir) for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$dir" </dev/null || exit 1; \
	done

lint:
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './.imsfs-cache/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
