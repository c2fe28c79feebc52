package emulator

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxSkew is how far a request's date may be from the emulator's clock, as the real gateways allow.
const maxSkew = 15 * time.Minute

// key returns the secret for an AccessKeyId, and the temporary key it belongs to (nil for the
// account's own key pair).
func (s *Server) key(akid string) (secret string, k *stsKey, ok bool) {
	if akid == s.opts.AccessKeyID {
		return s.opts.AccessKeySecret, nil, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.sts[akid]; k != nil {
		return k.Secret, k, true
	}
	return "", nil, false
}

// useNonce records a signature nonce; false when it was seen within twice the allowed skew.
func (s *Server) useNonce(nonce string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, t := range s.nonces {
		if time.Since(t) > 2*maxSkew {
			delete(s.nonces, n)
		}
	}
	if _, seen := s.nonces[nonce]; seen {
		return false
	}
	s.nonces[nonce] = time.Now()
	return true
}

// verifyIMS checks the signature of an IMS request, ACS3-HMAC-SHA256 (the SDK's default) or the
// legacy HMAC-SHA1 RPC signature, and returns the action it asks for.
func (s *Server) verifyIMS(r *http.Request, body []byte) (string, *imsError) {
	if strings.HasPrefix(r.Header.Get("Authorization"), "ACS3-HMAC-SHA256 ") {
		return r.Header.Get("x-acs-action"), s.verifyACS3(r, body)
	}
	if r.URL.Query().Has("Signature") {
		return r.URL.Query().Get("Action"), s.verifyRPC(r)
	}
	return "", errIMS(400, "MissingParameter", "The request is not signed: send an ACS3-HMAC-SHA256 Authorization header or an HMAC-SHA1 Signature parameter.")
}

// checkIMSKey is what both signatures check of the key, once the signature holds: a temporary
// key needs its token and its time, and upload credentials are for OSS only.
func checkIMSKey(k *stsKey, token string) *imsError {
	if k == nil {
		return nil
	}
	if token != k.Token {
		return errIMS(400, "InvalidSecurityToken.MismatchWithAccessKey", "The security token you provided does not match the access key.")
	}
	if time.Now().After(k.Expires) {
		return errIMS(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
	}
	if k.scoped() {
		return errIMS(403, "Forbidden.RAM", "User not authorized to operate on the specified resource.")
	}
	return nil
}

// verifyACS3 checks an ACS3-HMAC-SHA256 signature as the gateway does: it rebuilds the
// canonical request from what arrived, with the headers the Authorization header names.
func (s *Server) verifyACS3(r *http.Request, body []byte) *imsError {
	const algo = "ACS3-HMAC-SHA256 "
	fields := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(r.Header.Get("Authorization"), algo), ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			fields[k] = v
		}
	}
	akid, signedHeaders, sig := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if akid == "" || signedHeaders == "" || sig == "" {
		return errIMS(400, "IncompleteSignature", "The Authorization header lacks Credential, SignedHeaders or Signature.")
	}
	secret, k, ok := s.key(akid)
	if !ok {
		return errIMS(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
	}
	date, err := time.Parse("2006-01-02T15:04:05Z", r.Header.Get("x-acs-date"))
	if err != nil {
		return errIMS(400, "MissingParameter", "The x-acs-date header is missing or malformed.")
	}
	if d := time.Since(date); d > maxSkew || d < -maxSkew {
		return errIMS(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
	}
	sum := sha256.Sum256(body)
	if payload := r.Header.Get("x-acs-content-sha256"); payload != hex.EncodeToString(sum[:]) {
		return errIMS(400, "SignatureDoesNotMatch", "The x-acs-content-sha256 header does not match the body.")
	}
	names := strings.Split(signedHeaders, ";")
	must := []string{"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"}
	if r.Header.Get("x-acs-security-token") != "" {
		must = append(must, "x-acs-security-token")
	}
	for _, m := range must {
		if !contains(names, m) {
			return errIMS(400, "IncompleteSignature", "Header %s must be signed.", m)
		}
	}
	var canonHeaders strings.Builder
	for _, h := range names {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		canonHeaders.WriteString(h + ":" + strings.TrimSpace(v) + "\n")
	}
	canonical := r.Method + "\n/\n" + canonicalQuery(r.URL.Query()) + "\n" + canonHeaders.String() + "\n" +
		signedHeaders + "\n" + r.Header.Get("x-acs-content-sha256")
	h := sha256.Sum256([]byte(canonical))
	stringToSign := "ACS3-HMAC-SHA256\n" + hex.EncodeToString(h[:])
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(stringToSign))
	if !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(sig)) {
		return errIMS(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. server string to sign is:%s", stringToSign)
	}
	if e := checkIMSKey(k, r.Header.Get("x-acs-security-token")); e != nil {
		return e
	}
	// The nonce is checked last, so that a request refused for another reason does not use it up.
	if !s.useNonce(r.Header.Get("x-acs-signature-nonce")) {
		return errIMS(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
	}
	return nil
}

// verifyRPC checks the legacy RPC signature (SignatureVersion 1.0, HMAC-SHA1 over the sorted
// parameters), which darabonba sends when SignatureAlgorithm is "v2".
func (s *Server) verifyRPC(r *http.Request) *imsError {
	q := r.URL.Query()
	if err := r.ParseForm(); err == nil {
		for k, vs := range r.PostForm {
			q[k] = vs
		}
	}
	return s.verifyRPCParams(r.Method, q, "2020-11-09")
}

// verifyRPCParams checks an RPC signature over the parameters q (query and form) of a request
// of method, for the API version version (IMS's, or STS's for AssumeRole).
func (s *Server) verifyRPCParams(method string, q url.Values, version string) *imsError {
	for _, p := range []string{"AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp", "Action", "Version"} {
		if q.Get(p) == "" {
			return errIMS(400, "MissingParameter", "The input parameter %s that is mandatory for processing this request is not supplied.", p)
		}
	}
	if q.Get("SignatureMethod") != "HMAC-SHA1" || q.Get("SignatureVersion") != "1.0" {
		return errIMS(400, "InvalidParameter", "SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0.")
	}
	secret, k, ok := s.key(q.Get("AccessKeyId"))
	if !ok {
		return errIMS(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
	}
	date, err := time.Parse("2006-01-02T15:04:05Z", q.Get("Timestamp"))
	if err != nil {
		return errIMS(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
	}
	if d := time.Since(date); d > maxSkew || d < -maxSkew {
		return errIMS(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
	}
	signed := url.Values{}
	for k, vs := range q {
		if k != "Signature" {
			signed[k] = vs[:1]
		}
	}
	encoded := strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(signed.Encode())
	stringToSign := method + "&%2F&" + url.QueryEscape(encoded)
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(stringToSign))
	if !hmac.Equal([]byte(base64.StdEncoding.EncodeToString(mac.Sum(nil))), []byte(q.Get("Signature"))) {
		return errIMS(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. server string to sign is:%s", stringToSign)
	}
	if v := q.Get("Version"); v != version {
		return errIMS(400, "InvalidVersion", "Specified parameter Version is not valid: %q.", v)
	}
	if e := checkIMSKey(k, q.Get("SecurityToken")); e != nil {
		return e
	}
	if !s.useNonce(q.Get("SignatureNonce")) {
		return errIMS(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
	}
	return nil
}

// canonicalQuery encodes query parameters as the ACS3 signer does: sorted keys, values
// percent-encoded with %20 for space, %2A for *, and ~ left alone.
func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k + "=")
		if v := q.Get(k); v != "" {
			b.WriteString(url.QueryEscape(v))
		}
	}
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(b.String())
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ossSubresources are the query parameters the V1 signature covers: the OSS SDK's signKeyList.
var ossSubresources = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range strings.Fields(`acl uploads location cors logging website referer lifecycle delete append
		tagging objectMeta uploadId partNumber security-token position img style styleName replication
		replicationProgress replicationLocation cname bucketInfo comp qos live status vod startTime endTime
		symlink x-oss-process response-content-type x-oss-traffic-limit response-content-language
		response-expires response-cache-control response-content-disposition response-content-encoding udf
		udfName udfImage udfId udfImageDesc udfApplication udfApplicationLog restore callback callback-var
		qosInfo policy stat encryption versions versioning versionId requestPayment x-oss-request-payer
		sequential inventory inventoryId continuation-token asyncFetch worm wormId wormExtend withHashContext
		x-oss-enable-md5 x-oss-enable-sha1 x-oss-enable-sha256 x-oss-hash-ctx x-oss-md5-ctx
		transferAcceleration regionList cloudboxes x-oss-ac-source-ip x-oss-ac-subnet-mask x-oss-ac-vpc-id
		x-oss-ac-forward-allow metaQuery resourceGroup rtc x-oss-async-process responseHeader`) {
		m[k] = true
	}
	return m
}()

// verifyOSS checks an OSS V1 or V4 signature and the temporary key's token and time. It returns
// the temporary key (nil for the account's key pair) so that the caller can check its scope.
func (s *Server) verifyOSS(r *http.Request, bucket, key string) (*stsKey, *ossError) {
	auth := r.Header.Get("Authorization")
	var (
		secret string
		k      *stsKey
		e      *ossError
	)
	lookup := func(id string) *ossError {
		var ok bool
		if secret, k, ok = s.key(id); !ok {
			return errOSS(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records.")
		}
		return nil
	}
	switch {
	case strings.HasPrefix(auth, "OSS4-HMAC-SHA256 "):
		s.count("oss.signed.v4")
		e = s.verifyOSSV4(r, bucket, key, lookup, func() string { return secret })
	case strings.HasPrefix(auth, "OSS "):
		s.count("oss.signed.v1")
		id, sig, ok := strings.Cut(strings.TrimPrefix(auth, "OSS "), ":")
		if !ok {
			return nil, errOSS(400, "InvalidArgument", "Authorization header is invalid.")
		}
		if e = lookup(id); e == nil {
			e = verifyOSSV1(r, bucket, key, secret, sig)
		}
	case auth == "" && r.URL.Query().Has("OSSAccessKeyId"):
		// A presigned URL, as GetMediaInfo's FileUrl: V1 with Expires in place of Date.
		q := r.URL.Query()
		expires, err := strconv.ParseInt(q.Get("Expires"), 10, 64)
		if err != nil {
			return nil, errOSS(403, "AccessDenied", "The Expires parameter is missing or malformed.")
		}
		if time.Now().Unix() > expires {
			return nil, errOSS(403, "AccessDenied", "Request has expired.")
		}
		if e = lookup(q.Get("OSSAccessKeyId")); e == nil {
			e = checkOSSV1(r, bucket, key, secret, q.Get("Signature"), q.Get("Expires"))
		}
		if k != nil && e == nil && q.Get("security-token") != k.Token {
			e = errOSS(403, "InvalidSecurityToken", "The security token you provided is invalid.")
		}
		if e != nil {
			return nil, e
		}
		return k, nil
	default:
		return nil, errOSS(403, "AccessDenied", "The request is not signed with an OSS V1 or V4 signature.")
	}
	if e != nil {
		return nil, e
	}
	if k == nil {
		return nil, nil
	}
	if r.Header.Get("X-Oss-Security-Token") != k.Token {
		return nil, errOSS(403, "InvalidSecurityToken", "The security token you provided is invalid.")
	}
	if time.Now().After(k.Expires) {
		return nil, errOSS(403, "SecurityTokenExpired", "The security token you provided has expired.")
	}
	return k, nil
}

func checkDate(date time.Time) *ossError {
	if d := time.Since(date); d > maxSkew || d < -maxSkew {
		return errOSS(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.")
	}
	return nil
}

// verifyOSSV1 checks an OSS V1 signature, the SDK's default: HMAC-SHA1 over the verb, the
// content headers, the date, the x-oss- headers and the resource with its signed subresources.
func verifyOSSV1(r *http.Request, bucket, key, secret, sig string) *ossError {
	date, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return errOSS(403, "AccessDenied", "The Date header is missing or malformed.")
	}
	if e := checkDate(date); e != nil {
		return e
	}
	return checkOSSV1(r, bucket, key, secret, sig, r.Header.Get("Date"))
}

// checkOSSV1 compares a V1 signature with the one secret gives; date is the Date header, or
// the Expires parameter of a presigned URL.
func checkOSSV1(r *http.Request, bucket, key, secret, sig, date string) *ossError {
	var oss []string
	for name, vals := range r.Header {
		if l := strings.ToLower(name); strings.HasPrefix(l, "x-oss-") {
			oss = append(oss, l+":"+vals[0]+"\n")
		}
	}
	sort.Strings(oss)
	var sub []string
	for name, vals := range r.URL.Query() {
		if ossSubresources[name] {
			if vals[0] != "" {
				sub = append(sub, name+"="+vals[0])
			} else {
				sub = append(sub, name)
			}
		}
	}
	sort.Strings(sub)
	resource := "/" + bucket + "/" + key
	if len(sub) > 0 {
		resource += "?" + strings.Join(sub, "&")
	}
	toSign := r.Method + "\n" + r.Header.Get("Content-MD5") + "\n" + r.Header.Get("Content-Type") + "\n" +
		date + "\n" + strings.Join(oss, "") + resource
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(toSign))
	if !hmac.Equal([]byte(base64.StdEncoding.EncodeToString(mac.Sum(nil))), []byte(sig)) {
		return errOSS(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. StringToSign: %q", toSign)
	}
	return nil
}

// ossEscape percent-encodes as the OSS SDK does for V4: query escaping with %20 for space.
func ossEscape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// verifyOSSV4 checks an OSS4-HMAC-SHA256 signature: a canonical request over the escaped
// resource, every query parameter and the content and x-oss- headers, signed with a key
// derived from the secret, the day, the region and the product.
func (s *Server) verifyOSSV4(r *http.Request, bucket, key string, lookup func(string) *ossError, secret func() string) *ossError {
	fields := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(r.Header.Get("Authorization"), "OSS4-HMAC-SHA256 "), ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			fields[k] = v
		}
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || fields["Signature"] == "" {
		return errOSS(400, "InvalidArgument", "Authorization header is invalid: want Credential=AK/DAY/REGION/oss/aliyun_v4_request and Signature.")
	}
	if e := lookup(scope[0]); e != nil {
		return e
	}
	day, region := scope[1], scope[2]
	if scope[3] != "oss" || scope[4] != "aliyun_v4_request" {
		return errOSS(400, "InvalidArgument", "Authorization header is invalid: the credential scope must end in oss/aliyun_v4_request.")
	}
	if region != s.opts.Region {
		return errOSS(400, "InvalidArgument", "The region %q in the credential scope is not this endpoint's region %q.", region, s.opts.Region)
	}
	signDate := r.Header.Get("X-Oss-Date")
	var date time.Time
	var err error
	if signDate != "" {
		date, err = time.Parse("20060102T150405Z", signDate)
	} else {
		signDate = r.Header.Get("Date")
		date, err = http.ParseTime(signDate)
	}
	if err != nil {
		return errOSS(403, "AccessDenied", "The x-oss-date or Date header is missing or malformed.")
	}
	if e := checkDate(date); e != nil {
		return e
	}
	if date.UTC().Format("20060102") != day {
		return errOSS(403, "SignatureDoesNotMatch", "The day %s in the credential scope is not the request's date %s.", day, signDate)
	}

	var additional []string
	if a := fields["AdditionalHeaders"]; a != "" {
		additional = strings.Split(strings.ToLower(a), ";")
	}
	headers := map[string]string{}
	for name, vals := range r.Header {
		l := strings.ToLower(name)
		if l == "content-md5" || l == "content-type" || strings.HasPrefix(l, "x-oss-") || contains(additional, l) {
			headers[l] = strings.Trim(vals[0], " ")
		}
	}
	if contains(additional, "host") {
		headers["host"] = r.Host
	}
	var canonHeaders strings.Builder
	for _, h := range sortedKeys(headers) {
		canonHeaders.WriteString(h + ":" + headers[h] + "\n")
	}
	params := map[string]string{}
	for k, vs := range r.URL.Query() {
		params[url.QueryEscape(k)] = ossEscape(vs[0])
	}
	var query []string
	for _, k := range sortedKeys(params) {
		if params[k] != "" {
			query = append(query, k+"="+params[k])
		} else {
			query = append(query, k)
		}
	}
	resource := "/" + bucket + "/" + strings.ReplaceAll(ossEscape(key), "%2F", "/")
	payload := r.Header.Get("X-Oss-Content-Sha256")
	if payload == "" {
		payload = "UNSIGNED-PAYLOAD"
	}
	canonical := r.Method + "\n" + resource + "\n" + strings.Join(query, "&") + "\n" + canonHeaders.String() + "\n" +
		strings.Join(additional, ";") + "\n" + payload
	h := sha256.Sum256([]byte(canonical))
	toSign := "OSS4-HMAC-SHA256\n" + signDate + "\n" + day + "/" + region + "/oss/aliyun_v4_request\n" + hex.EncodeToString(h[:])
	signingKey := []byte("aliyun_v4" + secret())
	for _, part := range []string{day, region, "oss", "aliyun_v4_request"} {
		signingKey = hmacSHA256(signingKey, part)
	}
	if !hmac.Equal([]byte(hex.EncodeToString(hmacSHA256(signingKey, toSign))), []byte(fields["Signature"])) {
		return errOSS(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. StringToSign: %q CanonicalRequest: %q", toSign, canonical)
	}
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(data))
	return mac.Sum(nil)
}

// issueSTS hands out a temporary key: scoped to one object when bucket and key are given (the
// upload credentials of CreateUploadMedia), for the whole account otherwise.
func (s *Server) issueSTS(bucket, key string, ttl time.Duration) (akid string, k *stsKey, err error) {
	k = &stsKey{Secret: randomHex(15), Token: "CAIS" + randomHex(60), Bucket: bucket, Key: key, Expires: time.Now().UTC().Add(ttl).Truncate(time.Second)}
	akid = "STS." + strings.ToUpper(randomHex(12))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sts[akid] = k
	return akid, k, s._journalSTS(stsEntry{ID: akid, Key: k})
}

// handleIssueSTS answers POST /_emulator/sts[?ttl=DURATION]: a temporary key for the account,
// as STS AssumeRole would give one, which IMS and OSS accept with its SecurityToken.
func (s *Server) handleIssueSTS(w http.ResponseWriter, r *http.Request) {
	ttl := time.Hour
	if v := r.URL.Query().Get("ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			http.Error(w, "ttl: want a positive Go duration such as 15m", http.StatusBadRequest)
			return
		}
		ttl = d
	}
	akid, k, err := s.issueSTS("", "", ttl)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"AccessKeyId": akid, "AccessKeySecret": k.Secret, "SecurityToken": k.Token,
		"Expiration": k.Expires.Format(time.RFC3339), "DurationSeconds": strconv.Itoa(int(ttl / time.Second)),
	})
}

// signedURL presigns a GET of an object with the account's key pair (V1, Expires), as the
// FileUrl of GetMediaInfo is.
func (s *Server) signedURL(bucket, key string, ttl time.Duration) string {
	expires := strconv.FormatInt(time.Now().Add(ttl).Unix(), 10)
	mac := hmac.New(sha1.New, []byte(s.opts.AccessKeySecret))
	mac.Write([]byte("GET\n\n\n" + expires + "\n/" + bucket + "/" + key))
	q := url.Values{"Expires": {expires}, "OSSAccessKeyId": {s.opts.AccessKeyID}, "Signature": {base64.StdEncoding.EncodeToString(mac.Sum(nil))}}
	return s.base + escapePath("/"+bucket+"/"+key) + "?" + q.Encode()
}
