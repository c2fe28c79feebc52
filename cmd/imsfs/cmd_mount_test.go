package main

import (
	"strings"
	"testing"
)

func TestResolveEndpoint(t *testing.T) {
	for _, tt := range []struct {
		endpoint, region, want, err string
	}{
		{"", "cn-shanghai", "https://ice.cn-shanghai.aliyuncs.com", ""},
		{"", "cn-beijing", "https://ice.cn-beijing.aliyuncs.com", ""},
		{"", "cn-shenzhen", "https://ice.cn-shenzhen.aliyuncs.com", ""},
		{"", "cn-hangzhou", "", "only in cn-shanghai, cn-beijing and cn-shenzhen"},
		{"", "ap-southeast-1", "", "only in cn-shanghai, cn-beijing and cn-shenzhen"},
		{"ice.cn-beijing.aliyuncs.com", "cn-hangzhou", "https://ice.cn-beijing.aliyuncs.com", ""},
		{"http://127.0.0.1:9000", "cn-shanghai", "http://127.0.0.1:9000", ""},
	} {
		got, err := resolveEndpoint(tt.endpoint, tt.region)
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("resolveEndpoint(%q, %q) = %q, %v; want %q, %q", tt.endpoint, tt.region, got, err, tt.want, tt.err)
		}
	}
	if maskKey("LTAI5tAbCdEfGh") != "LTAI5t…" || maskKey("abc") != "abc" {
		t.Errorf("maskKey: %s", maskKey("LTAI5tAbCdEfGh"))
	}
}
