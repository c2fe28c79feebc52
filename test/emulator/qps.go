package emulator

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/time/rate"
)

// Flow control, as the service's: each action may have a rate (--qps ACTION=N, calls a second);
// a call past it is answered Throttling.Api, HTTP 400, "Request was denied due to api flow
// control.", the code and words Alibaba Cloud's gateway answers an API's rate limit with. The
// service's own limits are not published per action; tests choose theirs.

// ParseQPS reads ACTION=N[,ACTION=N...] into rates by action.
func ParseQPS(spec string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		action, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("qps %q: want ACTION=N", item)
		}
		if _, known := imsActions[action]; !known {
			names := make([]string, 0, len(imsActions))
			for n := range imsActions {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("qps %q: %q is not an action the emulator answers (%s)", item, action, strings.Join(names, ", "))
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("qps %q: want a rate over 0 calls a second", item)
		}
		out[action] = n
	}
	return out, nil
}

// limiters are the rates of the actions that have one; read only after New.
type limiters map[string]*rate.Limiter

func newLimiters(qps map[string]float64) limiters {
	l := limiters{}
	for action, n := range qps {
		l[action] = rate.NewLimiter(rate.Limit(n), max(1, int(n)))
	}
	return l
}

// allow reports whether a call of action is within its rate.
func (l limiters) allow(action string) bool {
	lim := l[action]
	return lim == nil || lim.Allow()
}
