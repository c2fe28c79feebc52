package emulator

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// STS AssumeRole (Version 2015-04-01), as credentials-go calls it for a RAM role
// (RamRoleArn): an RPC call signed with the account's key that answers a temporary key of the
// role. The emulator has no RAM: any well-formed role ARN is taken, and the key it hands out
// can do what the account can (as a role whose policy allows the ice: actions).

var (
	roleARN     = regexp.MustCompile(`^acs:ram::[0-9]+:role/[A-Za-z0-9._-]{1,64}$`)
	sessionName = regexp.MustCompile(`^[A-Za-z0-9.@_-]{2,64}$`)
)

func (s *Server) assumeRole(w http.ResponseWriter, r *http.Request, reqID string, body []byte) {
	q := r.URL.Query()
	if form, err := url.ParseQuery(string(body)); err == nil {
		for k, vs := range form {
			q[k] = vs
		}
	}
	if e := s.verifyRPCParams(r.Method, q, "2015-04-01"); e != nil {
		s.writeIMSError(w, r, reqID, "AssumeRole", e)
		return
	}
	arn, session := q.Get("RoleArn"), q.Get("RoleSessionName")
	if !roleARN.MatchString(arn) {
		s.writeIMSError(w, r, reqID, "AssumeRole", errIMS(400, "InvalidParameter.RoleArn", "The parameter RoleArn %q is wrongly formed: acs:ram::ACCOUNT:role/NAME.", arn))
		return
	}
	if !sessionName.MatchString(session) {
		s.writeIMSError(w, r, reqID, "AssumeRole", errIMS(400, "InvalidParameter.RoleSessionName", "The parameter RoleSessionName %q is wrongly formed.", session))
		return
	}
	ttl := time.Hour
	if v := q.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 900 || n > 43200 {
			s.writeIMSError(w, r, reqID, "AssumeRole", errIMS(400, "InvalidParameter.DurationSeconds", "The parameter DurationSeconds %q is not between 900 and 43200.", v))
			return
		}
		ttl = time.Duration(n) * time.Second
	}
	akid, k, err := s.issueSTS("", "", ttl)
	if err != nil {
		s.writeIMSError(w, r, reqID, "AssumeRole", errIMS(500, "InternalError", "%v", err))
		return
	}
	s.writeIMS(w, reqID, 200, map[string]any{
		"AssumedRoleUser": map[string]string{"Arn": arn + "/" + session, "AssumedRoleId": "3" + randomHex(8) + ":" + session},
		"Credentials": map[string]string{"AccessKeyId": akid, "AccessKeySecret": k.Secret, "SecurityToken": k.Token,
			"Expiration": k.Expires.Format("2006-01-02T15:04:05Z")},
	})
}
