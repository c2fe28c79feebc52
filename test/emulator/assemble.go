package emulator

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// A CompleteMultipartUpload answers once the parts are checked; the object is put together
// after the answer, as the real service's Complete does not grow with the object (and a copy
// of hundreds of MiB on this machine can take seconds). Until it is, what reads, replaces or
// deletes the object waits (settled); what a stopped emulator left unassembled, the next one
// finishes when it loads.

// completion is what a Complete answered, kept in its upload's folder until the object is
// assembled.
type completion struct {
	Bucket string
	Key    string
	Parts  []int // part numbers, in order
	Size   int64
	CRC64  uint64
	ETag   string
}

const completionFile = "complete.json"

// startAssembly ends upload id (a part or another Complete for it gets NoSuchUpload) and takes
// its object for assembly, after any assembly of the same object still under way.
func (s *Server) startAssembly(id, obj string) (chan struct{}, *ossError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := s.assembling[obj]; ch != nil; ch = s.assembling[obj] {
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	m := s.uploads[id]
	if m == nil {
		return nil, errOSS(404, "NoSuchUpload", "The specified upload does not exist: it was aborted or completed while this Complete was sent.")
	}
	delete(s.uploads, id)
	done := make(chan struct{})
	s.assembling[obj] = done
	return done, nil
}

// abandonAssembly undoes startAssembly when the Complete cannot be answered.
func (s *Server) abandonAssembly(m *multipart, done chan struct{}) {
	s.mu.Lock()
	s.uploads[m.ID] = m
	s.mu.Unlock()
	s.settle(objectIndex(m.Bucket, m.Key), done)
}

// assemble puts the object of a completed upload together, then lets what waits for it go on.
func (s *Server) assemble(id string, c completion, done chan struct{}) {
	defer s.settle(objectIndex(c.Bucket, c.Key), done)
	if err := s.assembleNow(id, c); err != nil {
		s.opts.Log.Error("emulator: assemble a completed object", "bucket", c.Bucket, "key", c.Key, "err", err)
	}
}

func (s *Server) assembleNow(id string, c completion) error {
	files := make([]string, len(c.Parts))
	for i, n := range c.Parts {
		files[i] = filepath.Join(s.uploadDir(id), strconv.Itoa(n))
	}
	if _, err := s.writeAssembled(objectIndex(c.Bucket, c.Key), files, c.Size, c.CRC64, c.ETag); err != nil {
		return err
	}
	return os.RemoveAll(s.uploadDir(id))
}

// finishAssembly assembles, at load, the object of upload id if its Complete was answered;
// done says whether it was.
func (s *Server) finishAssembly(id string) (done bool, err error) {
	var c completion
	if err := readJSONFile(filepath.Join(s.uploadDir(id), completionFile), &c); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return true, s.assembleNow(id, c)
}

func (s *Server) settle(obj string, done chan struct{}) {
	s.mu.Lock()
	if s.assembling[obj] == done {
		delete(s.assembling, obj)
	}
	s.mu.Unlock()
	close(done)
}

// settled waits until obj is not being assembled. Call without s.mu held.
func (s *Server) settled(obj string) {
	s.mu.Lock()
	ch := s.assembling[obj]
	s.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// allSettled waits until no object is being assembled. Call without s.mu held.
func (s *Server) allSettled() {
	s.mu.Lock()
	chs := make([]chan struct{}, 0, len(s.assembling))
	for _, ch := range s.assembling {
		chs = append(chs, ch)
	}
	s.mu.Unlock()
	for _, ch := range chs {
		<-ch
	}
}
