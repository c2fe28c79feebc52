package emulator_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/imsfs/imsfs/test/emulator"
)

func TestFaultSpecSyntax(t *testing.T) {
	good := []string{
		"",
		"oss.part=0.2:500,ims.create=0.1:Throttling,oss.put=0.05:reset,*=0:latency=100ms",
		"media.ready=1:fail",
		"media.ready=0:latency=2s",
		"oss.*=1:reset",
		"ims.*=0.5:Throttling.User/400:latency=10ms",
		"oss.complete=1:InvalidPart",
		"oss.part=0.5:corrupt",
	}
	for _, spec := range good {
		if err := emulator.ParseFaults(spec); err != nil {
			t.Errorf("%q: %v", spec, err)
		}
	}
	bad := []string{
		"oss.part",               // no probability
		"oss.part=0.1",           // no effect
		"oss.part=2:500",         // probability out of range
		"oss.part=x:500",         // not a number
		"nowhere=1:500",          // unknown point
		"oss.part=0.1:600",       // not an error status
		"oss.part=0.1:500:reset", // two error effects
		"oss.put=1:fail",         // fail is for media.ready
		"oss.complete=1:corrupt", // corrupt is for a body
		"oss.put=1:corrupt:500",  // two error effects
		"media.ready=1:500",      // media.ready has no answer to give
		"oss.put=1:latency=soon",
		"oss.put=1:Bad Code",
	}
	for _, spec := range bad {
		if err := emulator.ParseFaults(spec); err == nil {
			t.Errorf("%q was accepted", spec)
		}
	}
}

func setFaults(t *testing.T, s *emulator.Server, spec, query string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, s.URL()+"/_emulator/faults"+query, strings.NewReader(spec))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT /_emulator/faults %q: %d %s", spec, resp.StatusCode, body)
	}
}

func stats(t *testing.T, s *emulator.Server) emulator.Stats {
	t.Helper()
	resp, err := http.Get(s.URL() + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st emulator.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestFaultsAnswerInEachProtocolsShape(t *testing.T) {
	s := startEmulator(t, emulator.Options{Faults: "ims.create=1:Throttling"})
	c := client(t, s, "", nil)
	_, err := call(c, "CreateUploadMedia", video)
	if code, status := errCode(err); code != "Throttling" || status != 400 {
		t.Errorf("ims.create=1:Throttling: %s %d (%v), want Throttling 400", code, status, err)
	}
	setFaults(t, s, "ims.get=1:500", "")
	u := ticket(t, s, nil)
	_, err = call(c, "GetMediaInfo", map[string]string{"MediaId": u.MediaID})
	if code, status := errCode(err); code != "InternalError" || status != 500 {
		t.Errorf("ims.get=1:500: %s %d, want InternalError 500", code, status)
	}
	setFaults(t, s, "oss.put=1:503", "")
	if err := u.Bucket.PutObject(u.Key, strings.NewReader("x")); ossCode(err) != "ServiceUnavailable" {
		t.Errorf("oss.put=1:503: %v, want ServiceUnavailable", err)
	}
	setFaults(t, s, "oss.put=1:SecurityTokenExpired", "")
	var se oss.ServiceError
	if err := u.Bucket.PutObject(u.Key, strings.NewReader("x")); ossCode(err) != "SecurityTokenExpired" || !asServiceError(err, &se) || se.StatusCode != 403 {
		t.Errorf("oss.put=1:SecurityTokenExpired: %v, want SecurityTokenExpired 403", err)
	}
	st := stats(t, s)
	if st.Faults["ims.create"] != 1 || st.Faults["ims.get"] != 1 || st.Faults["oss.put"] != 2 {
		t.Errorf("stats count faults %v, want ims.create 1, ims.get 1, oss.put 2", st.Faults)
	}
}

func asServiceError(err error, se *oss.ServiceError) bool {
	e, ok := err.(oss.ServiceError)
	if ok {
		*se = e
	}
	return ok
}

// TestResetCutsTheConnection: a PUT cut half-way stores nothing; a CreateUploadMedia whose
// answer is cut has still made its asset, which is how a client ends up with an orphan.
func TestResetCutsTheConnection(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	u := ticket(t, s, nil)
	setFaults(t, s, "oss.put=1:reset", "")
	err := u.Bucket.PutObject(u.Key, strings.NewReader(strings.Repeat("x", 1<<20)))
	if err == nil || ossCode(err) != "" {
		t.Fatalf("a reset PUT: %v, want a network error", err)
	}
	setFaults(t, s, "", "")
	if st := stats(t, s); st.Objects != 0 || st.BytesStored != 0 {
		t.Errorf("after a reset PUT the emulator holds %d objects, %d bytes", st.Objects, st.BytesStored)
	}
	setFaults(t, s, "ims.create=1:reset", "")
	before := len(s.Assets())
	if _, err := call(client(t, s, "", nil), "CreateUploadMedia", video); err == nil {
		t.Fatal("a reset CreateUploadMedia answered")
	}
	if after := len(s.Assets()); after != before+1 {
		t.Errorf("a reset CreateUploadMedia left %d assets, want %d: the action ran, its answer was lost", after, before+1)
	}
}

// TestCorruptStoresOtherBytes: a corrupted PUT is stored with its first byte flipped and
// answered with the CRC-64 of what was stored, so that the SDK's own check (on by default) sees
// that the bytes differ from those it sent, as a client of OSS would.
func TestCorruptStoresOtherBytes(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	u := ticket(t, s, nil)
	setFaults(t, s, "oss.put=1:corrupt", "")
	err := u.Bucket.PutObject(u.Key, strings.NewReader("abcdef"))
	if _, ok := err.(oss.CRCCheckError); !ok {
		t.Fatalf("a corrupted PUT: %v, want the SDK's CRC check to fail", err)
	}
	setFaults(t, s, "", "")
	body, err := u.Bucket.GetObject(u.Key)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(body)
	body.Close()
	if string(got) != "\x9ebcdef" {
		t.Errorf("the object holds %q", got)
	}
}

func TestLatencyDelaysWithoutFailing(t *testing.T) {
	s := startEmulator(t, emulator.Options{Faults: "*=0:latency=200ms"})
	start := time.Now()
	if _, err := call(client(t, s, "", nil), "CreateUploadMedia", video); err != nil {
		t.Fatal(err)
	}
	// A lower bound only: the delay is a sleep, so the call cannot be faster.
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("the call took %v with 200ms latency injected", d)
	}
}

func TestMediaReadyFailEndsPrepareFail(t *testing.T) {
	s := startEmulator(t, emulator.Options{Faults: "media.ready=1:fail"})
	u := ticket(t, s, nil)
	if err := u.Bucket.PutObject(u.Key, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if st := basic(mediaInfo(t, s, u.MediaID))["Status"]; st != "PrepareFail" {
		t.Fatalf("with media.ready=1:fail the asset is %v, want PrepareFail", st)
	}
}

// outcomes makes n GetMediaInfo calls and notes which failed.
func outcomes(t *testing.T, s *emulator.Server, id string, n int) string {
	c := client(t, s, "", nil)
	var b strings.Builder
	for i := 0; i < n; i++ {
		if _, err := call(c, "GetMediaInfo", map[string]string{"MediaId": id}); err != nil {
			b.WriteByte('x')
		} else {
			b.WriteByte('.')
		}
	}
	return b.String()
}

func TestASeedRepeatsTheDraws(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	id := ticket(t, s, nil).MediaID
	setFaults(t, s, "ims.get=0.5:500", "?seed=42")
	first := outcomes(t, s, id, 40)
	setFaults(t, s, "ims.get=0.5:500", "?seed=42")
	if again := outcomes(t, s, id, 40); again != first {
		t.Errorf("seed 42 gave %s, then %s", first, again)
	}
	setFaults(t, s, "ims.get=0.5:500", "?seed=43")
	if other := outcomes(t, s, id, 40); other == first {
		t.Errorf("seeds 42 and 43 gave the same 40 draws %s", first)
	}
	if !strings.Contains(first, "x") || !strings.Contains(first, ".") {
		t.Errorf("a 0.5 chance gave %s", first)
	}
}

func TestFaultsChangeAtRunTime(t *testing.T) {
	s := startEmulator(t, emulator.Options{})
	u := ticket(t, s, nil)
	setFaults(t, s, "oss.*=1:500", "")
	if err := u.Bucket.PutObject(u.Key, strings.NewReader("x")); ossCode(err) != "InternalError" {
		t.Errorf("with oss.*=1:500: %v", err)
	}
	resp, err := http.Get(s.URL() + "/_emulator/faults")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Spec     string
		Injected map[string]int64
	}
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if got.Spec != "oss.*=1:500" || got.Injected["oss.put"] != 1 {
		t.Errorf("GET /_emulator/faults: %+v", got)
	}
	req, _ := http.NewRequest(http.MethodPut, s.URL()+"/_emulator/faults", strings.NewReader("nowhere=1:500"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Errorf("a bad spec: %v %v, want 400", resp.StatusCode, err)
	}
	req, _ = http.NewRequest(http.MethodDelete, s.URL()+"/_emulator/faults", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("DELETE /_emulator/faults: %v", err)
	}
	if err := u.Bucket.PutObject(u.Key, strings.NewReader("x")); err != nil {
		t.Errorf("after DELETE the PUT still fails: %v", err)
	}
	st := stats(t, s)
	if st.Requests["ims.create"] != 1 || st.Requests["oss.put"] != 2 || st.BytesStored != 1 || st.Objects != 1 || st.Assets["Normal"] != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestQPSAnswersAsFlowControl: an action given a rate answers the calls past it as the
// service's flow control does, Throttling.Api with HTTP 400; other actions are not limited.
func TestQPSAnswersAsFlowControl(t *testing.T) {
	if _, err := emulator.ParseQPS("CreateUploadMedia=2,GetMediaInfo=0.5"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"CreateUploadMedia", "Nope=1", "CreateUploadMedia=0", "CreateUploadMedia=x"} {
		if _, err := emulator.ParseQPS(bad); err == nil {
			t.Errorf("%q was taken", bad)
		}
	}
	s := startEmulator(t, emulator.Options{QPS: map[string]float64{"CreateUploadMedia": 1}})
	c := client(t, s, "", nil)
	if _, err := call(c, "CreateUploadMedia", video); err != nil {
		t.Fatal(err)
	}
	_, err := call(c, "CreateUploadMedia", video)
	if code, status := errCode(err); code != "Throttling.Api" || status != 400 {
		t.Errorf("a second CreateUploadMedia within the second: %s %d (%v), want Throttling.Api 400", code, status, err)
	}
	if _, err := call(c, "ListMediaBasicInfos", map[string]string{"MaxResults": "1"}); err != nil {
		t.Errorf("an action without a rate was throttled: %v", err)
	}
	if n := stats(t, s).Requests["throttled.CreateUploadMedia"]; n != 1 {
		t.Errorf("stats count %d throttled calls, want 1", n)
	}
}
