// Package uploader turns closed files into IMS assets: it calls CreateUploadMedia, sends the
// bytes to OSS with the credentials it gets back, and checks in batches until the asset is
// Normal. It never sets a state: each step it takes is an event that the life-cycle table in
// the cache package turns into the record's next state, committed before it is acted on.
//
// The network sits behind two small interfaces, IMS (package ims) and Objects (package
// transfer), so that the queue, its retries, resume and disposal run against fakes in tests.
//
// NB lock order: Queue.mu and a schedule's mu are never held while calling the store, IMS or
// OSS; Queue.mu may be held while calling a schedule.
package uploader

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/ims"
	"github.com/imsfs/imsfs/uploader/imsrules"
	"github.com/imsfs/imsfs/uploader/transfer"
)

// IMS is what the uploader asks of the IMS API: *ims.Client, or a fake.
type IMS interface {
	CreateUploadMedia(ctx context.Context, req ims.CreateUploadMediaRequest) (*ims.Ticket, error)
	RefreshUploadMedia(ctx context.Context, mediaID string) (*ims.Ticket, error)
	GetMediaInfo(ctx context.Context, mediaID string, authTimeout time.Duration) (*ims.MediaInfo, error)
	BatchGetMediaInfos(ctx context.Context, mediaIDs []string, files bool) (*ims.Batch, error)
	UpdateMediaInfo(ctx context.Context, u ims.Update) error
	DeleteMediaInfos(ctx context.Context, mediaIDs ...string) error
	ListMediaBasicInfos(ctx context.Context, r ims.ListRequest) (*ims.ListPage, error)
}

// Objects is the object transfer: *transfer.Client, or a fake. Each write answers the CRC-64
// OSS reports for what it stored (Put and UploadPart have checked it against the bytes read).
type Objects interface {
	Put(ctx context.Context, t transfer.Target, creds transfer.CredentialsFunc, r io.Reader, size int64, p transfer.Progress) (uint64, error)
	Initiate(ctx context.Context, t transfer.Target, creds transfer.CredentialsFunc) (string, error)
	UploadPart(ctx context.Context, t transfer.Target, creds transfer.CredentialsFunc, uploadID string, n int, r io.Reader, size int64, p transfer.Progress) (transfer.Part, error)
	ListParts(ctx context.Context, t transfer.Target, creds transfer.CredentialsFunc, uploadID string) ([]transfer.Part, error)
	Complete(ctx context.Context, t transfer.Target, creds transfer.CredentialsFunc, uploadID string, parts []transfer.Part) (uint64, error)
	Abort(ctx context.Context, t transfer.Target, creds transfer.CredentialsFunc, uploadID string) error
	Head(ctx context.Context, t transfer.Target, creds transfer.CredentialsFunc) (transfer.Object, error)
}

// Config holds what a Queue needs. Zero values take the defaults in brackets.
type Config struct {
	Store   *cache.Store
	IMS     IMS
	Objects Objects
	Log     *slog.Logger
	Clock   clockwork.Clock // [the real one]
	Workers int             // files over one PUT (larger than PartSize) uploaded at once [4]
	// SmallWorkers is how many files sent in one PUT (up to PartSize) are uploaded at once,
	// the larger ones still at most Workers among them [4 × Workers]: a small file's upload
	// is mostly waiting on round trips (CreateUploadMedia, a commit made durable, the PUT),
	// not on bytes, so more of them at once go faster without taking more of the link.
	SmallWorkers int
	PartSize     int64              // multipart part size; a file up to this size goes in one PUT [8 MiB]
	MaxParts     int                // the most parts OSS takes in one object; bigger files get bigger parts [10,000]
	PartWorkers  int                // parts of one file sent at once [4]
	EarlyAfter   time.Duration      // how long a file is written in order before its parts go while it is written [2 s]
	AppID        string             // CreateUploadMedia AppId [IMS's default]
	Retry        Retry              // how failing calls are tried again [DefaultRetry]
	Ready        ReadyCheck         // how often readiness is asked [DefaultReadyCheck]
	Names        *imsrules.Admitter // which names become assets [imsrules.DefaultTempNames]
	OnOverwrite  Policy             // what becomes of the asset of an overwritten file [keep]
	OnDelete     Policy             // what becomes of the asset of a deleted file [keep]
	// Bandwidth caps what every upload sends, across all transfers, at each time of the week
	// (--bwlimit) [no limit].
	Bandwidth Timetable
	// Yield is how new uploads give way to the mount's writers [DefaultYield].
	Yield Yield
	// ConfigID names the settings uploads depend on (endpoint, region, key): when it differs
	// from the last mount's, failed uploads are tried again at Recover [never].
	ConfigID string
	// Observer is told what the uploads do, for metrics [nothing].
	Observer Observer
	// Settings gives what the folder of the file at path adds to its CreateUploadMedia (the
	// configuration file's folders) [nothing].
	Settings func(path string) AssetSettings
}

// AssetSettings is what a folder's files get in their CreateUploadMedia besides their name
// and type; an empty field is IMS's default.
type AssetSettings struct {
	AppID           string // AppId [Config.AppID]
	EntityID        string // EntityId
	CateID          int64  // MediaMetaData.CateId, unless the file sets one (user.ims.cate_id)
	Tags            string // MediaMetaData.Tags, comma separated, unless the file sets some
	Workflow        string // PostProcessConfig: the workflow run once the asset is uploaded (video, audio)
	StorageLocation string // UploadTargetConfig: the media service storage address the bytes go to
	CallbackURL     string // UserData.MessageCallback: where IMS posts the asset's events
}

const (
	defaultPartSize = 8 << 20
	minPartSize     = 100 << 10 // OSS refuses smaller parts (but the last)
	defaultMaxParts = 10000     // OSS's limit
	// createTimeout bounds a CreateUploadMedia call, which is not cancelled with its run.
	createTimeout = time.Minute
)

// onePut reports whether a file of size bytes is sent in one PUT, not as a multipart upload.
func (c Config) onePut(size int64) bool { return size <= c.PartSize }

// ReadyCheck is how the assets of uploaded files are watched until IMS has prepared them.
type ReadyCheck struct {
	First time.Duration // from the end of the upload to the first check, and the step of the checks' grid [400ms]
	Max   time.Duration // the longest wait between checks of one asset [30s]
	Batch int           // assets asked about in one BatchGetMediaInfos [20]
	// Gather is how early a check may be made to join a batch [First/5]. It stays well under
	// First: an asset found not ready is asked again after First or more, and a batch that
	// took it that early would ask again at once (with a second here, every file was asked
	// four times within its first 1.5 s).
	Gather  time.Duration
	Timeout time.Duration // from the end of the upload to giving up on the asset: it fails [1h]
	// Calls is how many BatchGetMediaInfos may be in flight at once [4]: one at a time, a copy
	// of thousands of files has its checks wait for each other's answers, and ready comes late.
	Calls int
}

// DefaultReadyCheck is the ReadyCheck of a zero Config.
var DefaultReadyCheck = ReadyCheck{First: 400 * time.Millisecond, Max: 30 * time.Second, Batch: 20, Timeout: time.Hour, Calls: 4}

func (c *Config) defaults() {
	if c.EarlyAfter == 0 {
		c.EarlyAfter = 2 * time.Second
	}
	if c.Observer == nil {
		c.Observer = NopObserver{}
	}
	if c.Settings == nil {
		c.Settings = func(string) AssetSettings { return AssetSettings{} }
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.SmallWorkers <= 0 {
		c.SmallWorkers = 4 * c.Workers
	}
	c.SmallWorkers = max(c.SmallWorkers, c.Workers)
	if c.PartSize <= 0 {
		c.PartSize = defaultPartSize
	}
	c.PartSize = max(c.PartSize, minPartSize)
	if c.MaxParts <= 0 {
		c.MaxParts = defaultMaxParts
	}
	if c.PartWorkers <= 0 {
		c.PartWorkers = 4
	}
	c.Retry = c.Retry.withDefaults()
	if c.Ready.First <= 0 {
		c.Ready.First = DefaultReadyCheck.First
	}
	if c.Ready.Max <= 0 {
		c.Ready.Max = DefaultReadyCheck.Max
	}
	if c.Ready.Gather <= 0 {
		c.Ready.Gather = c.Ready.First / 5
	}
	if c.Ready.Batch <= 0 {
		c.Ready.Batch = DefaultReadyCheck.Batch
	}
	if c.Ready.Timeout <= 0 {
		c.Ready.Timeout = DefaultReadyCheck.Timeout
	}
	if c.Yield == (Yield{}) {
		c.Yield = DefaultYield
	}
	if c.Yield.Hold <= 0 {
		c.Yield.Hold = DefaultYield.Hold
	}
	if c.Ready.Calls <= 0 {
		c.Ready.Calls = DefaultReadyCheck.Calls
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Names == nil {
		c.Names, _ = imsrules.NewAdmitter(imsrules.DefaultTempNames)
	}
	if c.OnOverwrite == "" {
		c.OnOverwrite = Keep
	}
	if c.OnDelete == "" {
		c.OnDelete = Keep
	}
}

// partSize is the part size for a file of size bytes: the configured one, or larger when the
// file would otherwise need more parts than OSS takes.
func (c *Config) partSize(size int64) int64 {
	need := (size + int64(c.MaxParts) - 1) / int64(c.MaxParts)
	if need <= c.PartSize {
		return c.PartSize
	}
	const align = 1 << 20
	return (need + align - 1) / align * align
}
