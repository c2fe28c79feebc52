package uploader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/ims"
)

// The library is every asset of the account, as ListMediaBasicInfos gives them: the service is
// what the workstations share, so there is no coordination between mounts, only listing. It is
// listed in sweeps over creation time, window by window (ims.ListWindow, whatever the 100-match
// cap), kept in the store (a restarted mount shows it at once, offline too), and told to the
// file system as it changes. Between sweeps, each refresh lists the newest assets and asks after
// the recent ones whose upload had not come.

// LibraryConfig is what a Library needs. Zero values take the defaults in brackets.
type LibraryConfig struct {
	Store *cache.Store
	IMS   IMS
	// Chunks holds what was fetched of the library's files: an asset's go when its bytes
	// change or it goes [none].
	Chunks *cache.Chunks
	// Place returns the folder (under library/) an asset of mediaType and businessType goes in.
	Place func(mediaType, businessType string) string
	// Folders are the folders of the library (under library/): no asset takes one's name.
	Folders []string
	// Refresh is how often new assets are looked for [30s].
	Refresh time.Duration
	// SweepCalls bounds the listing calls a refresh spends going over the whole library again
	// (for assets deleted or changed), once it has been listed whole [100].
	SweepCalls int
	Log        *slog.Logger
}

// LibraryEntry is what the file system shows of one asset of the library.
type LibraryEntry struct {
	MediaID  string
	Dir      string // under library/
	Name     string
	Size     int64
	Created  time.Time // the asset's
	Changed  time.Time // its fields', as IMS last changed them
	FileTime time.Time // its bytes'
	Status   string    // as IMS says: Normal, Preparing…
	Version  string    // names its bytes (cache.LibraryAsset.Version)
}

// LibraryChange is an entry that came, went or changed in a folder of the library.
type LibraryChange struct {
	Dir, Name string
	MediaID   string
	Gone      bool // it went (or moved away): the name is free
	Bytes     bool // it is there with other bytes than before
}

// LibraryState is how current the library shown is.
type LibraryState struct {
	Assets int       // shown
	Listed time.Time // when a sweep of the whole library last ended (zero: never yet)
	// Stale is set while IMS cannot be reached: what was last listed is shown, Since then.
	Stale error
	Since time.Time
}

// Library keeps the listing of the account's assets.
type Library struct {
	cfg      LibraryConfig // read only
	reserved map[string]map[string]bool
	onChange func([]LibraryChange) // set before Run

	mu    sync.RWMutex
	byID  map[string]*LibraryEntry            // protected by mu: every asset listed, shown or not
	dirs  map[string]map[string]*LibraryEntry // protected by mu: dir → name → shown asset
	lists map[string][]LibraryEntry           // protected by mu: a dir's entries by name, built when asked
	meta  cache.LibraryMeta                   // protected by mu
	stale error                               // protected by mu
	since time.Time                           // protected by mu
}

const (
	// listCarry is how far back each refresh lists again before the newest it had listed: for
	// a service clock behind this machine's, and a call made in the second an asset was.
	listCarry = 5 * time.Minute
	// listLag keeps the newest second out of a listing: assets made in it may come after.
	listLag = 2 * time.Second
	// sweepWindow is how many known assets a sweep asks for in one window: under the cap, so
	// that a window the library grew in comes back whole.
	sweepWindow = 80
	// pendingFor is how long an asset without a file is asked after at each refresh; later it
	// waits for the sweeps.
	pendingFor = 24 * time.Hour
	// pendingCalls bounds the BatchGetMediaInfos calls of a refresh, of pendingBatch assets each.
	pendingCalls = 5
	pendingBatch = 20
)

// NewLibrary returns the library as the store last kept it.
func NewLibrary(cfg LibraryConfig) (*Library, error) {
	if cfg.Refresh <= 0 {
		cfg.Refresh = 30 * time.Second
	}
	if cfg.SweepCalls <= 0 {
		cfg.SweepCalls = 100
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	l := &Library{cfg: cfg, reserved: map[string]map[string]bool{}, byID: map[string]*LibraryEntry{},
		dirs: map[string]map[string]*LibraryEntry{}, lists: map[string][]LibraryEntry{}}
	for _, f := range cfg.Folders {
		parent := path.Dir(f)
		if parent == "." {
			parent = ""
		}
		if l.reserved[parent] == nil {
			l.reserved[parent] = map[string]bool{}
		}
		l.reserved[parent][path.Base(f)] = true
	}
	assets, err := cfg.Store.LibraryAssets()
	if err != nil {
		return nil, err
	}
	if l.meta, err = cfg.Store.LibraryMeta(); err != nil {
		return nil, err
	}
	for i := range assets {
		e := entryOf(&assets[i])
		l.byID[e.MediaID] = e
		if e.Name != "" {
			l._show(e)
		}
	}
	return l, nil
}

// OnChange sets what is told of each change (the file system, to tell the kernel); call it
// before Run.
func (l *Library) OnChange(fn func([]LibraryChange)) { l.onChange = fn }

func entryOf(a *cache.LibraryAsset) *LibraryEntry {
	return &LibraryEntry{MediaID: a.MediaID, Dir: a.Dir, Name: a.Name, Size: a.Size, Created: a.Created,
		Changed: a.Changed, FileTime: a.FileTime, Status: a.Status, Version: a.Version()}
}

// _show puts e in its folder. Call with mu held.
func (l *Library) _show(e *LibraryEntry) {
	if l.dirs[e.Dir] == nil {
		l.dirs[e.Dir] = map[string]*LibraryEntry{}
	}
	l.dirs[e.Dir][e.Name] = e
	delete(l.lists, e.Dir)
}

// _hide takes e out of its folder. Call with mu held.
func (l *Library) _hide(e *LibraryEntry) {
	if l.dirs[e.Dir][e.Name] == e {
		delete(l.dirs[e.Dir], e.Name)
		delete(l.lists, e.Dir)
	}
}

// List returns the assets shown in dir, by name.
func (l *Library) List(dir string) []LibraryEntry {
	l.mu.RLock()
	list, ok := l.lists[dir]
	l.mu.RUnlock()
	if ok {
		return list
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if list, ok := l.lists[dir]; ok {
		return list
	}
	list = make([]LibraryEntry, 0, len(l.dirs[dir]))
	for _, e := range l.dirs[dir] {
		list = append(list, *e)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	l.lists[dir] = list
	return list
}

// Lookup returns the asset shown as name in dir.
func (l *Library) Lookup(dir, name string) (LibraryEntry, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	e, ok := l.dirs[dir][name]
	if !ok {
		return LibraryEntry{}, false
	}
	return *e, true
}

// Entry returns the asset mediaID as shown, if it is.
func (l *Library) Entry(mediaID string) (LibraryEntry, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	e, ok := l.byID[mediaID]
	if !ok || e.Name == "" {
		return LibraryEntry{}, false
	}
	return *e, true
}

// Asset returns all the store keeps of an asset (its fields, for attributes and sidecars).
func (l *Library) Asset(mediaID string) (cache.LibraryAsset, error) {
	return l.cfg.Store.LibraryAsset(mediaID)
}

// State says how current the library shown is.
func (l *Library) State() LibraryState {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := 0
	for _, d := range l.dirs {
		n += len(d)
	}
	return LibraryState{Assets: n, Listed: l.meta.Listed, Stale: l.stale, Since: l.since}
}

// Run lists the library now and at each refresh until ctx ends.
func (l *Library) Run(ctx context.Context) {
	for {
		l.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.cfg.Refresh):
		}
	}
}

// refresh lists what is new, asks after the recent assets without a file, and goes on with the
// sweep; until the library has been listed whole once, the sweep goes on until it has.
func (l *Library) refresh(ctx context.Context) {
	now := time.Now().Add(-listLag).Truncate(time.Second)
	l.mu.RLock()
	meta := l.meta
	l.mu.RUnlock()
	err := func() error {
		if !meta.Listed.IsZero() {
			start := meta.Newest.Add(-listCarry)
			if err := l.list(ctx, ims.Window{Start: start, End: now}, nil, nil); err != nil {
				return err
			}
			l.mu.Lock()
			l.meta.Newest = now
			l.mu.Unlock()
			if err := l.askPending(ctx, now); err != nil {
				return err
			}
		}
		return l.sweep(ctx, now, !meta.Listed.IsZero())
	}()
	l.setStale(ctx, err)
}

// setStale notes whether the last refresh reached IMS, and says so in the log when it changes.
func (l *Library) setStale(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	var api *ims.APIError
	if errors.As(err, &api) && api.Throttled() {
		// Weather: the next refresh goes on where this one stopped.
		l.cfg.Log.Debug("the library's listing was throttled; it goes on at the next refresh", "err", err)
		return
	}
	l.mu.Lock()
	was := l.stale
	if err == nil {
		l.stale, l.since = nil, time.Time{}
	} else {
		if was == nil {
			l.since = time.Now()
		}
		l.stale = err
	}
	l.mu.Unlock()
	switch {
	case err != nil && was == nil:
		l.cfg.Log.Warn("the library cannot be listed: library/ shows what was last listed, and says it is stale", "err", err)
	case err == nil && was != nil:
		l.cfg.Log.Info("the library is listed again")
	}
}

// sweep goes on over the whole library, from where it had come to, in windows of about
// sweepWindow known assets, up to now. Once the library has been listed whole (bounded), a
// refresh spends SweepCalls calls at most on it.
func (l *Library) sweep(ctx context.Context, now time.Time, bounded bool) error {
	var calls *int
	if bounded {
		n := l.cfg.SweepCalls
		calls = &n
	}
	l.mu.RLock()
	from := l.meta.SweptTo
	created := make([]time.Time, 0, len(l.byID))
	for _, e := range l.byID {
		if e.Created.After(from) {
			created = append(created, e.Created)
		}
	}
	l.mu.RUnlock()
	slices.SortFunc(created, time.Time.Compare)
	for {
		end := now
		if len(created) > sweepWindow {
			if t := created[sweepWindow-1].Truncate(time.Second); t.After(from) && t.Before(now) {
				end = t
			}
		}
		err := l.list(ctx, ims.Window{Start: from, End: end}, calls, func(part ims.Window) { l.meta.SweptTo = part.End })
		if errors.Is(err, ims.ErrBudget) {
			return nil
		}
		if err != nil {
			return err
		}
		if !end.Before(now) {
			break
		}
		from = end
		i, _ := slices.BinarySearchFunc(created, end, func(t, end time.Time) int {
			if t.After(end) {
				return 1
			}
			return -1
		})
		created = created[i:]
	}
	l.mu.Lock()
	if l.meta.Listed.IsZero() {
		l.meta.Newest = now
		l.cfg.Log.Info("the library is listed", "assets", len(l.byID))
	}
	l.meta.Listed, l.meta.SweptTo = time.Now(), time.Time{}
	meta := l.meta
	l.mu.Unlock()
	return l.cfg.Store.PutLibrary(nil, nil, meta)
}

// list lists window w whole and applies each part as it comes; done (under mu) notes a part
// listed whole, before it is kept.
func (l *Library) list(ctx context.Context, w ims.Window, calls *int, done func(ims.Window)) error {
	return ims.ListWindow(ctx, l.cfg.IMS, ims.ListRequest{Files: true}, w, calls, func(part ims.Window, media []ims.MediaInfo, complete bool) error {
		if !complete {
			l.cfg.Log.Warn("more assets were made in one second than ListMediaBasicInfos lists; the library shows the first 100 of them",
				"second", part.End.UTC().Format(ims.TimeFormat))
		}
		var gone *ims.Window
		if complete {
			gone = &part
		}
		return l.apply(media, gone, nil, func() {
			if done != nil && complete {
				done(part)
			}
		})
	})
}

// askPending asks after the assets listed without a file in the last pendingFor: their upload
// may have come since.
func (l *Library) askPending(ctx context.Context, now time.Time) error {
	l.mu.RLock()
	var ids []string
	for id, e := range l.byID {
		if e.Name == "" && e.Created.After(now.Add(-pendingFor)) {
			ids = append(ids, id)
		}
	}
	l.mu.RUnlock()
	sort.Strings(ids)
	for calls := 0; len(ids) > 0 && calls < pendingCalls; calls++ {
		batch := ids[:min(len(ids), pendingBatch)]
		ids = ids[len(batch):]
		b, err := l.cfg.IMS.BatchGetMediaInfos(ctx, batch, true)
		if err != nil {
			return fmt.Errorf("ask after the assets whose upload had not come: %w", err)
		}
		if err := l.apply(b.MediaInfos, nil, b.Ignored, nil); err != nil {
			return err
		}
	}
	return nil
}

// apply takes what a listing gave: each asset's fields, where it shows (a name is given once
// it has a file, and kept), and the assets gone: those of gone (a window listed whole) it did
// not list, and those of ignored. It keeps them in the store, then tells onChange.
func (l *Library) apply(media []ims.MediaInfo, window *ims.Window, ignored []string, done func()) error {
	listed := make([]cache.LibraryAsset, 0, len(media))
	for i := range media {
		a := assetOf(&media[i])
		if a.HasFile {
			a.Dir = l.cfg.Place(a.MediaType, a.BusinessType)
		}
		listed = append(listed, a)
	}
	// The oldest first: of two assets of one name, it keeps the name.
	sort.SliceStable(listed, func(i, j int) bool { return listed[i].Created.Before(listed[j].Created) })
	seen := map[string]bool{}
	var put []cache.LibraryAsset
	var changes []LibraryChange
	var dropBytes [][2]string // mediaID, version kept
	l.mu.Lock()
	for i := range listed {
		a := &listed[i]
		seen[a.MediaID] = true
		old := l.byID[a.MediaID]
		if old != nil && old.Name != "" && a.HasFile {
			a.Name = old.Name
			if old.Dir == a.Dir {
				a.Dir = old.Dir
			} else {
				// Another BusinessType: it moves, with its name if that is free there.
				l._hide(old)
				changes = append(changes, LibraryChange{Dir: old.Dir, Name: old.Name, MediaID: a.MediaID, Gone: true})
				a.Name = l._freeName(a.Dir, old.Name, a.MediaID)
			}
		} else if a.HasFile {
			a.Name = l._freeName(a.Dir, libraryName(a), a.MediaID)
		} else {
			a.Dir = ""
		}
		e := entryOf(a)
		switch {
		case old != nil && old.Name != "" && e.Name == "":
			// Its file is no longer listed: it goes from the folder.
			l._hide(old)
			changes = append(changes, LibraryChange{Dir: old.Dir, Name: old.Name, MediaID: a.MediaID, Gone: true})
		case e.Name != "" && (old == nil || old.Name == "" || old.Dir != e.Dir):
			changes = append(changes, LibraryChange{Dir: e.Dir, Name: e.Name, MediaID: a.MediaID})
		case e.Name != "" && *old != *e:
			changes = append(changes, LibraryChange{Dir: e.Dir, Name: e.Name, MediaID: a.MediaID, Bytes: old.Version != e.Version})
		}
		if old != nil && old.Version != e.Version {
			dropBytes = append(dropBytes, [2]string{a.MediaID, e.Version})
		}
		if old != nil && old.Name != "" {
			l._hide(old)
		}
		l.byID[a.MediaID] = e
		if e.Name != "" {
			l._show(e)
		}
		put = append(put, *a)
	}
	var gone []string
	forget := func(e *LibraryEntry) {
		gone = append(gone, e.MediaID)
		if e.Name != "" {
			l._hide(e)
			changes = append(changes, LibraryChange{Dir: e.Dir, Name: e.Name, MediaID: e.MediaID, Gone: true})
		}
		dropBytes = append(dropBytes, [2]string{e.MediaID, ""})
		delete(l.byID, e.MediaID)
	}
	if window != nil {
		for id, e := range l.byID {
			if !seen[id] && e.Created.After(window.Start) && !e.Created.After(window.End) {
				forget(e)
			}
		}
	}
	for _, id := range ignored {
		if e := l.byID[id]; e != nil {
			forget(e)
		}
	}
	if done != nil {
		done()
	}
	meta := l.meta
	l.mu.Unlock()
	if err := l.cfg.Store.PutLibrary(put, gone, meta); err != nil {
		return err
	}
	if l.cfg.Chunks != nil {
		for _, d := range dropBytes {
			if err := l.cfg.Chunks.Drop(d[0], d[1]); err != nil {
				l.cfg.Log.Warn("the fetched bytes of a library asset stay in the cache", "media_id", d[0], "err", err)
			}
		}
	}
	for _, c := range changes {
		if c.Gone {
			l.cfg.Log.Debug("library asset gone", "path", path.Join("library", c.Dir, c.Name), "media_id", c.MediaID)
		} else {
			l.cfg.Log.Debug("library asset listed", "path", path.Join("library", c.Dir, c.Name), "media_id", c.MediaID)
		}
	}
	if len(changes) > 0 && l.onChange != nil {
		l.onChange(changes)
	}
	return nil
}

// assetOf is what the library keeps of an asset as a listing gave it.
func assetOf(m *ims.MediaInfo) cache.LibraryAsset {
	b := &m.MediaBasicInfo
	parse := func(s string) time.Time {
		t, _ := time.Parse(ims.TimeFormat, s)
		return t
	}
	a := cache.LibraryAsset{MediaID: m.MediaID, Created: parse(b.CreateTime), Changed: parse(b.ModifiedTime),
		MediaType: b.MediaType, BusinessType: b.BusinessType, Status: b.Status, Source: b.Source,
		Title: b.Title, Description: b.Description, Tags: b.MediaTags, Category: b.Category, CateID: b.CateID,
		FileURL: b.InputURL}
	if a.MediaID == "" {
		a.MediaID = b.MediaID
	}
	if f, ok := m.SourceFile(); ok {
		size, err := strconv.ParseInt(f.FileBasicInfo.FileSize, 10, 64)
		if err == nil && size >= 0 {
			a.HasFile, a.Size = true, size
		}
		a.FileName = f.FileBasicInfo.FileName
		a.FileTime = parse(f.FileBasicInfo.ModifiedTime)
		if a.FileTime.IsZero() {
			a.FileTime = parse(f.FileBasicInfo.CreateTime)
		}
		if a.FileURL == "" {
			a.FileURL = unsigned(f.FileBasicInfo.FileURL)
		}
	}
	if a.FileTime.IsZero() {
		a.FileTime = a.Created
	}
	return a
}

// unsigned is a URL without its query (a signature that expires).
func unsigned(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.RawQuery = ""
	return u.String()
}

// libraryName is the name an asset asks for: its file's name, else its title and the extension
// of its file's address, else its MediaId; made a valid name (no slash, no NUL, at most
// nameMax bytes).
func libraryName(a *cache.LibraryAsset) string {
	name := a.FileName
	if name == "" {
		ext := ""
		if u, err := url.Parse(a.FileURL); err == nil {
			ext = path.Ext(u.Path)
		}
		title := a.Title
		if title == "" {
			title = a.MediaID
		}
		name = title + ext
	}
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, name)
	if name == "" || name == "." || name == ".." {
		name = a.MediaID
	}
	return fitName(name, "")
}

// nameMax is the longest name a Linux file system takes, in bytes.
const nameMax = 255

// fitName puts suffix before name's extension and cuts what is before it, on a character's
// boundary, so that the whole is at most nameMax bytes.
func fitName(name, suffix string) string {
	ext := path.Ext(name)
	if len(ext) > 32 || ext == name {
		ext = "" // not an extension worth keeping whole
	}
	base := strings.TrimSuffix(name, ext)
	room := nameMax - len(suffix) - len(ext)
	for len(base) > room {
		_, size := utf8.DecodeLastRuneInString(base)
		base = base[:len(base)-size]
	}
	return base + suffix + ext
}

// sidecarSuffix is the sidecars' (fs.SidecarSuffix): an asset's name that ends so would be
// taken for the sidecar of another.
const sidecarSuffix = ".ims.json"

// _freeName returns want if no other asset shows under it in dir, else want with the first 8
// characters of mediaID before its extension (the whole MediaId if even that is taken). Call
// with mu held.
func (l *Library) _freeName(dir, want, mediaID string) string {
	taken := func(n string) bool {
		e := l.dirs[dir][n]
		return (e != nil && e.MediaID != mediaID) || l.reserved[dir][n] || strings.HasSuffix(n, sidecarSuffix)
	}
	if !taken(want) {
		return want
	}
	short := mediaID
	if len(short) > 8 {
		short = short[:8]
	}
	if n := fitName(want, " ["+short+"]"); !taken(n) {
		return n
	}
	return fitName(want, " ["+mediaID+"]")
}
