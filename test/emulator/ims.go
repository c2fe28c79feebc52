package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
)

// imsError is an IMS error answer: the JSON envelope every Alibaba Cloud RPC API returns.
type imsError struct {
	status  int
	code    string
	message string
}

func errIMS(status int, code, format string, args ...any) *imsError {
	return &imsError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// imsAction is one RPC action: its fault point and what answers it.
type imsAction struct {
	point  string
	handle func(s *Server, q url.Values) (map[string]any, *imsError)
}

// imsActions is every action the emulator answers; the rest get InvalidAction.NotFound.
var imsActions = map[string]imsAction{
	"CreateUploadMedia":   {"ims.create", (*Server).createUploadMedia},
	"RefreshUploadMedia":  {"ims.refresh", (*Server).refreshUploadMedia},
	"GetMediaInfo":        {"ims.get", (*Server).getMediaInfo},
	"BatchGetMediaInfos":  {"ims.batchget", (*Server).batchGetMediaInfos},
	"UpdateMediaInfo":     {"ims.update", (*Server).updateMediaInfo},
	"DeleteMediaInfos":    {"ims.delete", (*Server).deleteMediaInfos},
	"ListMediaBasicInfos": {"ims.list", (*Server).listMediaBasicInfos},
}

func (s *Server) writeIMS(w http.ResponseWriter, reqID string, status int, body map[string]any) {
	body["RequestId"] = reqID
	data, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set("x-acs-request-id", reqID)
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func (s *Server) writeIMSError(w http.ResponseWriter, r *http.Request, reqID, action string, e *imsError) {
	level := slog.LevelInfo
	if action == "" && r.Method == http.MethodHead {
		level = slog.LevelDebug // a probe of the endpoint (imsfs doctor reads its clock), no call
	}
	s.opts.Log.Log(r.Context(), level, "IMS request refused", "method", r.Method, "action", action, "code", e.code, "message", e.message)
	s.writeIMS(w, reqID, e.status, map[string]any{
		"HostId":    r.Host,
		"Code":      e.code,
		"Message":   e.message,
		"Recommend": "https://api.aliyun.com/troubleshoot?q=" + url.QueryEscape(e.code) + "&product=ICE&requestId=" + reqID,
	})
}

// handleIMS answers the IMS RPC actions the way the darabonba-openapi client calls them:
// parameters in the query; the action in x-acs-action (ACS3) or the Action parameter (legacy).
func (s *Server) handleIMS(w http.ResponseWriter, r *http.Request) {
	reqID := requestID()
	action := r.Header.Get("x-acs-action")
	if action == "" {
		action = r.URL.Query().Get("Action")
	}
	act, known := imsActions[action]
	point := act.point
	if !known {
		point = "ims.other"
	}
	w, answered := s.inject(w, r, point, func(status int, code string) {
		s.writeIMSError(w, r, reqID, action, errIMS(status, code, "The request failed: a fault the emulator was told to inject."))
	})
	if answered {
		return
	}
	if known && !s.qps.allow(action) {
		s.count("throttled." + action)
		s.writeIMSError(w, r, reqID, action, errIMS(400, "Throttling.Api", "Request was denied due to api flow control."))
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		s.writeIMSError(w, r, reqID, action, errIMS(405, "UnsupportedHTTPMethod", "Specified HTTP method %s is not supported.", r.Method))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.writeIMSError(w, r, reqID, action, errIMS(400, "InvalidParameter", "cannot read the request body: %v", err))
		return
	}
	if action == "AssumeRole" && r.URL.Query().Get("Version") == "2015-04-01" {
		s.assumeRole(w, r, reqID, body) // STS, which credentials-go calls for a RAM role
		return
	}
	signedAction, e := s.verifyIMS(r, body)
	if e != nil {
		s.writeIMSError(w, r, reqID, action, e)
		return
	}
	if signedAction != action {
		s.writeIMSError(w, r, reqID, action, errIMS(400, "SignatureDoesNotMatch", "The signed action %q is not the action %q.", signedAction, action))
		return
	}
	if v := r.Header.Get("x-acs-version"); v != "" && v != "2020-11-09" {
		s.writeIMSError(w, r, reqID, action, errIMS(400, "InvalidVersion", "Specified parameter Version is not valid: %q.", v))
		return
	}
	if !known {
		s.writeIMSError(w, r, reqID, action, errIMS(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."))
		return
	}
	out, e := act.handle(s, r.URL.Query())
	if e != nil {
		s.writeIMSError(w, r, reqID, action, e)
		return
	}
	s.writeIMS(w, reqID, 200, out)
}
