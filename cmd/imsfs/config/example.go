package config

// Example is what `imsfs config example` prints; TestExamplePasses checks it.
const Example = `# imsfs configuration (YAML). imsfs mount reads it from --config FILE, or from
# ~/.config/imsfs/config.yaml ($XDG_CONFIG_HOME/imsfs/config.yaml) when there is one.
# Each setting is a flag of imsfs mount, by the same name; a flag on the command line wins.
# Check a file with: imsfs config check FILE

# Where the assets go. CreateUploadMedia exists in cn-shanghai, cn-beijing and cn-shenzhen.
region: cn-shanghai
# endpoint: ice.cn-shanghai.aliyuncs.com   # default: the region's
# app-id: app-1000000                      # the AppId of every asset (default: IMS's)

# Uploads.
upload-delay: 2s        # settle time after the last close
transfers: 4            # files over one PUT (larger than part-size) uploaded at once
# small-transfers: 16     # files of one PUT (up to part-size) at once (default: 4 × transfers)
part-size: 8MiB         # multipart part size (100KiB to 5GiB)
ready-timeout: 1h       # how long IMS may take to prepare an asset
drain-timeout: 30s      # on unmount, how long running uploads may go on
on-overwrite: keep      # keep or delete the asset of a file that gets new bytes
on-delete: keep         # keep or delete the asset of a file that is deleted
bwlimit: off            # what uploads send at most: 8M, 512k, or a timetable: "08:00,512k 19:00,8M 23:00,off"
# temp-names: [".*.swp", "*~", "*.tmp"]    # names never uploaded (default: the editors' and tools')

# The cache.
# cache-dir: /var/cache/imsfs              # default: ~/.cache/imsfs
# cache-max-size: 20GiB                    # default: no bound
sidecars: true          # NAME.ims.json beside each file
library: true           # library/: every asset in IMS, read-only, read on demand
library-refresh: 30s    # how often library/ looks for new assets
passthrough: true       # the kernel writes new files straight to the cache (Linux 6.9+, as root)
sync-on-close: false    # fsync each file, its name and its record at every close (slower)

# Who and what.
allow-other: false      # let other users in (a folder re-exported over SMB or NFS)
allow-non-empty: false  # mount over a folder that holds files (hidden while mounted)
notify: false           # desktop notifications (session D-Bus)

# Logs and metrics.
log-level: info         # debug, info, warn or error
log-format: text        # text or json
# metrics-addr: 127.0.0.1:9464             # Prometheus metrics at /metrics (default: off)

# Folders: new ones, with their Type and BusinessType, and what the assets of the files saved
# in a folder (and in the folders below it) get. The default folders (video/, video/opening/,
# image/cover/, …) are there in any case; an entry for one adds settings to it.
folders:
  video/promo:                # a new folder: its files are video, business type opening
    type: video
    business-type: opening    # video: general, opening, ending
    cate-id: 1001             # the category of its assets
    tags: [promo, "2026"]     # at most 16
    workflow: 0123456789abcdef0123456789abcdef   # run after the upload (video and audio only)
    callback-url: https://example.com/ims-events # where IMS posts the assets' events
  image/cover:                # a default folder, with settings added
    tags: [cover]
    # app-id: app-1000000
    # entity-id: my-entity
    # storage-location: outin-0123456789abcdef.oss-cn-shanghai.aliyuncs.com
  video/raw:                  # names kept in the mount and never uploaded (no sidecar, status local);
    ignore: ["*.bak", ".DS_Store", "._*", "Thumbs.db"]   # the default: .DS_Store, ._*, Thumbs.db, desktop.ini, .~lock.*#, ~$*, .fuse_hidden*, .nfs*
`
