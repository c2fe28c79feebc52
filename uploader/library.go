package uploader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"

	"github.com/imsfs/imsfs/cache"
	"github.com/imsfs/imsfs/uploader/ims"
	"github.com/imsfs/imsfs/uploader/imsrules"
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

// LibraryEntry is what the file system shows of one asset of the library, and what the
// library keeps in memory of each: small, for 100,000 of them.
type LibraryEntry struct {
	MediaID  string
	Dir      string // under library/
	Name     string
	HasFile  bool // shown only then
	Size     int64
	Created  time.Time // the asset's
	Changed  time.Time // its fields', as IMS last changed them
	FileTime time.Time // its bytes'
	Status   string    // as IMS says: Normal, Preparing…
}

// Version names the asset's bytes (cache.LibraryVersion).
func (e *LibraryEntry) Version() string { return cache.LibraryVersion(e.MediaID, e.Size, e.FileTime) }

// LibraryChange is an entry that came, went or changed in a folder of the library.
type LibraryChange struct {
	Dir, Name string
	MediaID   string
	Gone      bool // it went (or moved away): the name is free
	Came      bool // it is new there
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

// Library keeps the listing of the account's assets. One goroutine (Run) changes it; the file
// system reads it.
type Library struct {
	cfg      LibraryConfig // read only
	reserved map[string]map[string]bool
	onChange func([]LibraryChange) // set before Run

	mu     sync.RWMutex
	byID   map[string]*LibraryEntry            // protected by mu: every asset listed, shown or not
	byTime *btree.BTreeG[*LibraryEntry]        // protected by mu: the same, by creation time
	names  map[string]map[string]*LibraryEntry // protected by mu: dir → name → asset that holds it
	lists  map[string][]LibraryEntry           // protected by mu: a dir's shown assets by name, built when asked
	shown  int                                 // protected by mu
	mtimes map[string]time.Time                // protected by mu: when each folder last changed
	// missed counts the complete listings of its window an asset was missing from: it is
	// forgotten at the second, not the first (a listing that came back short).
	missed map[string]int    // protected by mu
	meta   cache.LibraryMeta // protected by mu
	stale  error             // protected by mu
	since  time.Time         // protected by mu
}

const (
	// listCarry is how far back each refresh lists again before the newest it had listed: for
	// a service clock behind this machine's, and a call made in the second an asset was.
	listCarry = 5 * time.Minute
	// listLag keeps the newest seconds out of a listing: assets made in them may come after.
	listLag = 2 * time.Second
	// sweepWindow is how many known assets a sweep asks for in one window: under the cap, so
	// that a window the library grew in comes back whole.
	sweepWindow = 80
	// pendingFor is how long an asset without a file is asked after at each refresh, and holds
	// its name; later it waits for the sweeps, and a newer asset may take the name.
	pendingFor = 24 * time.Hour
	// pendingCalls bounds the BatchGetMediaInfos calls of a refresh, of pendingBatch assets each.
	pendingCalls = 5
	pendingBatch = 20
)

func createdBefore(a, b *LibraryEntry) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.MediaID < b.MediaID
}

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
		byTime: btree.NewG(32, createdBefore), names: map[string]map[string]*LibraryEntry{},
		lists: map[string][]LibraryEntry{}, mtimes: map[string]time.Time{}, missed: map[string]int{}}
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
	var err error
	if l.meta, err = cfg.Store.LibraryMeta(); err != nil {
		return nil, err
	}
	err = cfg.Store.EachLibraryAsset(func(a *cache.LibraryAsset) error {
		l._add(entryOf(a))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// OnChange sets what is told of each change (the file system, to tell the kernel); call it
// before Run.
func (l *Library) OnChange(fn func([]LibraryChange)) { l.onChange = fn }

// statuses interns the statuses IMS gives: one string for 100,000 assets.
var statuses = map[string]string{ims.MediaInit: ims.MediaInit, ims.MediaPreparing: ims.MediaPreparing,
	ims.MediaPrepareFail: ims.MediaPrepareFail, ims.MediaNormal: ims.MediaNormal}

func entryOf(a *cache.LibraryAsset) *LibraryEntry {
	status, ok := statuses[a.Status]
	if !ok {
		status = a.Status
	}
	return &LibraryEntry{MediaID: a.MediaID, Dir: a.Dir, Name: a.Name, HasFile: a.HasFile, Size: a.Size,
		Created: a.Created, Changed: a.Changed, FileTime: a.FileTime, Status: status}
}

// _add puts e in the maps. Call with mu held.
func (l *Library) _add(e *LibraryEntry) {
	l.byID[e.MediaID] = e
	l.byTime.ReplaceOrInsert(e)
	if e.Name == "" {
		return
	}
	if l.names[e.Dir] == nil {
		l.names[e.Dir] = map[string]*LibraryEntry{}
	}
	// Of two that hold one name (a reservation that lapsed), the one with a file shows.
	if old := l.names[e.Dir][e.Name]; old == nil || !old.HasFile {
		l.names[e.Dir][e.Name] = e
	}
	if e.HasFile {
		l.shown++
		delete(l.lists, e.Dir)
	}
}

// _remove takes e out of the maps. Call with mu held.
func (l *Library) _remove(e *LibraryEntry) {
	delete(l.byID, e.MediaID)
	l.byTime.Delete(e)
	if e.Name != "" && l.names[e.Dir][e.Name] == e {
		delete(l.names[e.Dir], e.Name)
	}
	if e.HasFile && e.Name != "" {
		l.shown--
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
	list = make([]LibraryEntry, 0, len(l.names[dir]))
	for _, e := range l.names[dir] {
		if e.HasFile {
			list = append(list, *e)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	l.lists[dir] = list
	return list
}

// Lookup returns the asset shown as name in dir.
func (l *Library) Lookup(dir, name string) (LibraryEntry, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	e, ok := l.names[dir][name]
	if !ok || !e.HasFile {
		return LibraryEntry{}, false
	}
	return *e, true
}

// Entry returns the asset mediaID as shown, if it is.
func (l *Library) Entry(mediaID string) (LibraryEntry, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	e, ok := l.byID[mediaID]
	if !ok || !e.HasFile || e.Name == "" || l.names[e.Dir][e.Name] != e {
		return LibraryEntry{}, false
	}
	return *e, true
}

// Asset returns all the store keeps of an asset shown (its fields, for attributes and
// sidecars).
func (l *Library) Asset(mediaID string) (cache.LibraryAsset, error) {
	e, ok := l.Entry(mediaID)
	if !ok {
		return cache.LibraryAsset{}, cache.ErrNotFound
	}
	return l.cfg.Store.LibraryAsset(e.Created, mediaID)
}

// Changed returns when folder dir last changed (an asset came, went or changed), or zero.
func (l *Library) Changed(dir string) time.Time {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mtimes[dir]
}

// State says how current the library shown is.
func (l *Library) State() LibraryState {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return LibraryState{Assets: l.shown, Listed: l.meta.Listed, Stale: l.stale, Since: l.since}
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
	listed, newest := !l.meta.Listed.IsZero(), l.meta.Newest
	l.mu.RUnlock()
	err := func() error {
		if listed {
			w := ims.Window{Start: newest.Add(-listCarry), End: now}
			if err := l.list(ctx, w, nil, func(m *cache.LibraryMeta, part ims.Window) {
				if part.End.Equal(now) {
					m.Newest = now
				}
			}); err != nil {
				return err
			}
			if err := l.askPending(ctx, now); err != nil {
				return err
			}
		}
		return l.sweep(ctx, now, listed)
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
	for {
		l.mu.RLock()
		from := l.meta.SweptTo
		end, n := now, 0
		l.byTime.AscendGreaterOrEqual(&LibraryEntry{Created: from.Add(time.Second)}, func(e *LibraryEntry) bool {
			if n++; n < sweepWindow {
				return true
			}
			if t := e.Created.Truncate(time.Second); t.After(from) && t.Before(now) {
				end = t
			}
			return false
		})
		l.mu.RUnlock()
		err := l.list(ctx, ims.Window{Start: from, End: end}, calls, func(m *cache.LibraryMeta, part ims.Window) { m.SweptTo = part.End })
		if errors.Is(err, ims.ErrBudget) {
			return nil
		}
		if err != nil {
			return err
		}
		if !end.Before(now) {
			break
		}
	}
	l.mu.Lock()
	first := l.meta.Listed.IsZero()
	if first {
		l.meta.Newest = now
	}
	l.meta.Listed, l.meta.SweptTo = time.Now(), time.Time{}
	meta, n := l.meta, len(l.byID)
	l.mu.Unlock()
	if first {
		l.cfg.Log.Info("the library is listed", "assets", n)
	}
	return l.cfg.Store.PutLibrary(nil, nil, meta)
}

// list lists window w whole and applies each part as it comes; done notes, in what is kept, a
// part listed whole.
func (l *Library) list(ctx context.Context, w ims.Window, calls *int, done func(*cache.LibraryMeta, ims.Window)) error {
	return ims.ListWindow(ctx, l.cfg.IMS, ims.ListRequest{Files: true}, w, calls, func(part ims.Window, media []ims.MediaInfo, complete bool) error {
		if !complete {
			l.cfg.Log.Warn("more assets were made in one second than ListMediaBasicInfos lists; the library shows the first 100 of them",
				"second", part.End.UTC().Format(ims.TimeFormat))
			return l.apply(media, nil, nil, nil)
		}
		return l.apply(media, &part, nil, func(m *cache.LibraryMeta) { done(m, part) })
	})
}

// askPending asks after the assets listed without a file in the last pendingFor, the newest
// first: their upload may have come since.
func (l *Library) askPending(ctx context.Context, now time.Time) error {
	var ids []string
	l.mu.RLock()
	l.byTime.Descend(func(e *LibraryEntry) bool {
		if e.Created.Before(now.Add(-pendingFor)) || len(ids) >= pendingCalls*pendingBatch {
			return false
		}
		if !e.HasFile {
			ids = append(ids, e.MediaID)
		}
		return true
	})
	l.mu.RUnlock()
	for len(ids) > 0 {
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

// planned is one asset of a listing, as it is to be kept, and what it was.
type planned struct {
	a   cache.LibraryAsset
	e   *LibraryEntry
	old *LibraryEntry // nil: new
}

// apply takes what a listing gave: each asset's fields and where it shows (a name given at its
// first listing, the oldest first, and kept), and the assets gone: those of window (listed
// whole) it missed twice in a row, and those of ignored (asked for by id, and not there). It
// keeps them in the store first, then shows them, then tells onChange. Only Run calls it.
func (l *Library) apply(media []ims.MediaInfo, window *ims.Window, ignored []string, note func(*cache.LibraryMeta)) error {
	listed := l.listedOf(media)
	// Plan, reading what is shown (Run alone changes it).
	l.mu.RLock()
	seen := make(map[string]bool, len(listed))
	for i := range listed {
		seen[listed[i].MediaID] = true
	}
	gone, missed := l._missing(window, seen, ignored)
	plan := l._plan(listed, gone)
	meta := l.meta
	l.mu.RUnlock()
	if note != nil {
		note(&meta)
	}
	// Keep, then show.
	if err := l.persist(plan, gone, meta); err != nil {
		return err
	}
	l.mu.Lock()
	changes, drops := l._commit(plan, gone, seen, missed)
	l.meta = meta
	l.mu.Unlock()
	l.tell(changes, drops)
	return nil
}

// listedOf is what a listing gave, placed in their folders, the oldest first: of two assets of
// one name, it keeps the name.
func (l *Library) listedOf(media []ims.MediaInfo) []cache.LibraryAsset {
	listed := make([]cache.LibraryAsset, 0, len(media))
	for i := range media {
		a := assetOf(&media[i])
		a.Dir = l.cfg.Place(a.MediaType, a.BusinessType)
		listed = append(listed, a)
	}
	sort.Slice(listed, func(i, j int) bool {
		if !listed[i].Created.Equal(listed[j].Created) {
			return listed[i].Created.Before(listed[j].Created)
		}
		return listed[i].MediaID < listed[j].MediaID
	})
	return listed
}

// _missing returns the assets known in window that the listing did not show (seen) a second
// time, and the ones it missed a first time; and those IMS said it does not know (ignored).
// Call with l.mu held.
func (l *Library) _missing(window *ims.Window, seen map[string]bool, ignored []string) (gone []*LibraryEntry, missed map[string]int) {
	missed = map[string]int{}
	if window != nil {
		from := &LibraryEntry{Created: window.Start.Add(time.Second)}
		if window.Start.IsZero() {
			from = &LibraryEntry{}
		}
		l.byTime.AscendGreaterOrEqual(from, func(e *LibraryEntry) bool {
			if e.Created.After(window.End) {
				return false
			}
			if !seen[e.MediaID] {
				if l.missed[e.MediaID] >= 1 {
					gone = append(gone, e)
				} else {
					missed[e.MediaID] = 1
				}
			}
			return true
		})
	}
	for _, id := range ignored {
		if e := l.byID[id]; e != nil {
			gone = append(gone, e)
		}
	}
	return gone, missed
}

// _plan names each listed asset and returns those that change. Call with l.mu held.
func (l *Library) _plan(listed []cache.LibraryAsset, gone []*LibraryEntry) []planned {
	// Names taken and freed by this listing itself.
	type slot struct{ dir, name string }
	takenNow := map[slot]string{}
	freedNow := map[slot]bool{}
	for _, e := range gone {
		freedNow[slot{e.Dir, e.Name}] = true
	}
	taken := func(dir, name, id string) bool {
		if owner, ok := takenNow[slot{dir, name}]; ok {
			return owner != id
		}
		if l.reserved[dir][name] || strings.HasSuffix(name, sidecarSuffix) {
			return true
		}
		e := l.names[dir][name]
		if e == nil || e.MediaID == id || freedNow[slot{dir, name}] {
			return false
		}
		// An asset without a file holds its name while its upload may still come.
		return e.HasFile || time.Since(e.Created) < pendingFor
	}
	var plan []planned
	for i := range listed {
		a := &listed[i]
		old := l.byID[a.MediaID]
		want := imsrules.LibraryName(a)
		if old != nil && old.Name != "" {
			want = old.Name // kept, in its folder or the one it moves to, while no other holds it
		}
		a.Name = imsrules.FreeName(a.Dir, want, a.MediaID, taken)
		takenNow[slot{a.Dir, a.Name}] = a.MediaID
		if old != nil && (old.Dir != a.Dir || old.Name != a.Name) {
			freedNow[slot{old.Dir, old.Name}] = true
		}
		e := entryOf(a)
		if old != nil && *old == *e {
			continue // as it was: nothing to keep again
		}
		plan = append(plan, planned{a: *a, e: e, old: old})
	}
	return plan
}

// persist keeps a plan in the store, before memory shows it.
func (l *Library) persist(plan []planned, gone []*LibraryEntry, meta cache.LibraryMeta) error {
	put := make([]cache.LibraryAsset, len(plan))
	for i := range plan {
		put[i] = plan[i].a
	}
	forget := make([]cache.LibraryAsset, len(gone))
	for i, e := range gone {
		forget[i] = cache.LibraryAsset{MediaID: e.MediaID, Created: e.Created}
	}
	if len(put) == 0 && len(forget) == 0 && meta == l.meta {
		return nil
	}
	return l.cfg.Store.PutLibrary(put, forget, meta)
}

// _commit shows a kept plan in memory and returns what changed in the folders, and the fetched
// bytes no longer the asset's: mediaID and the version kept ("" for none). Call with l.mu held
// for writing.
func (l *Library) _commit(plan []planned, gone []*LibraryEntry, seen map[string]bool, missed map[string]int) (changes []LibraryChange, drops [][2]string) {
	now := time.Now()
	change := func(c LibraryChange) {
		changes = append(changes, c)
		l.mtimes[c.Dir] = now
	}
	for _, e := range gone {
		if e.HasFile && l.names[e.Dir][e.Name] == e {
			change(LibraryChange{Dir: e.Dir, Name: e.Name, MediaID: e.MediaID, Gone: true})
		}
		l._remove(e)
		delete(l.missed, e.MediaID)
		drops = append(drops, [2]string{e.MediaID, ""})
	}
	for id := range seen {
		delete(l.missed, id)
	}
	maps.Copy(l.missed, missed)
	for _, p := range plan {
		wasShown := p.old != nil && p.old.HasFile && l.names[p.old.Dir][p.old.Name] == p.old
		moved := p.old != nil && (p.old.Dir != p.e.Dir || p.old.Name != p.e.Name)
		if p.old != nil {
			l._remove(p.old)
			if p.old.Version() != p.e.Version() {
				drops = append(drops, [2]string{p.e.MediaID, p.e.Version()})
			}
		}
		l._add(p.e)
		switch {
		case wasShown && (moved || !p.e.HasFile):
			change(LibraryChange{Dir: p.old.Dir, Name: p.old.Name, MediaID: p.e.MediaID, Gone: true})
			if p.e.HasFile {
				change(LibraryChange{Dir: p.e.Dir, Name: p.e.Name, MediaID: p.e.MediaID, Came: true})
			}
		case !wasShown && p.e.HasFile:
			change(LibraryChange{Dir: p.e.Dir, Name: p.e.Name, MediaID: p.e.MediaID, Came: true})
		case wasShown:
			change(LibraryChange{Dir: p.e.Dir, Name: p.e.Name, MediaID: p.e.MediaID, Bytes: p.old.Version() != p.e.Version()})
		}
	}
	return changes, drops
}

// tell drops the cached bytes of what changed and tells the file system.
func (l *Library) tell(changes []LibraryChange, drops [][2]string) {
	if l.cfg.Chunks != nil {
		for _, d := range drops {
			if err := l.cfg.Chunks.Drop(d[0], d[1]); err != nil {
				l.cfg.Log.Warn("the fetched bytes of a library asset stay in the cache", "media_id", d[0], "err", err)
			}
		}
	}
	for _, c := range changes {
		l.cfg.Log.Debug("library/ changed", "path", path.Join("library", c.Dir, c.Name), "media_id", c.MediaID, "gone", c.Gone, "came", c.Came)
	}
	if len(changes) > 0 && l.onChange != nil {
		l.onChange(changes)
	}
}

// assetOf is what the library keeps of an asset as a listing gave it.
func assetOf(m *ims.MediaInfo) cache.LibraryAsset {
	b := &m.MediaBasicInfo
	parse := func(s string) time.Time {
		t, _ := time.Parse(ims.TimeFormat, s)
		return t
	}
	a := cache.LibraryAsset{MediaID: m.MediaID, Created: parse(b.CreateTime), Changed: parse(b.ModifiedTime),
		MediaType: b.MediaType, BusinessType: b.BusinessType, Status: b.Status,
		Title: b.Title, Description: b.Description, Tags: b.MediaTags, CateID: b.CateID,
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

// sidecarSuffix is the sidecars' (fs.SidecarSuffix): an asset's name that ends so would be
// taken for the sidecar of another.
const sidecarSuffix = ".ims.json"
