// Reference outputs of the loadbalancing exporter's consistent-hash ring, for the operator's
// port of it (operator/weavergen/domain/shards.py, checked by tests/unit/test_shards.py).
//
// hack/ring-reference.sh copies the exporter's package out of the Go module cache, drops its own
// tests, adds this file and runs it: the routing keys and endpoints below come from the
// exporter's own code (routingIdentifiersFromTraces with routing_key: service, newHashRing,
// endpointFor), not from a re-implementation.
package loadbalancingexporter

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

type lookup struct {
	Service  string `json:"service"`
	Key      string `json:"key"`
	Endpoint string `json:"endpoint"`
}

type ringCase struct {
	Endpoints []string `json:"endpoints"`
	Items     int      `json:"items"`
	Digest    string   `json:"digest"`
	Lookups   []lookup `json:"lookups"`
}

// serviceKey is the routing key the exporter derives from spans of one service.
func serviceKey(t *testing.T, service string) string {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("op")
	ids, err := routingIdentifiersFromTraces(td, svcRouting, nil)
	if err != nil || len(ids) != 1 {
		t.Fatalf("routing identifiers of %q: %v %v", service, ids, err)
	}
	for id := range ids {
		return id
	}
	return ""
}

// digest fingerprints a ring's items (position and endpoint, in order).
func digest(ring *hashRing) string {
	h := sha256.New()
	for _, item := range ring.items {
		fmt.Fprintf(h, "%d %s\n", item.pos, item.endpoint)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func statefulSet(n int, suffix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("weavergen-operator-%d.weavergen-operator-shards.weavergen-system.svc%s", i, suffix)
	}
	return out
}

func many(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("10.0.%d.%d:4317", i/256, i%256)
	}
	return out
}

func TestReference(t *testing.T) {
	services := []string{"checkout", "web", "cart", "payments", "café", "a", "svc|pipe", strings.Repeat("s", 253)}
	for i := 0; i < 24; i++ {
		services = append(services, fmt.Sprintf("svc-%d", i))
	}
	endpointSets := [][]string{
		{"endpoint-1"},
		{"endpoint-1", "endpoint-2"},
		{"127.0.0.1:4317", "127.0.0.1:4318"},
		statefulSet(2, ":4317"),
		statefulSet(3, ":4317"),
		statefulSet(2, ""),
		statefulSet(5, ".cluster.local:4317"),
		many(700), // 140,000 candidates for 131,071 positions: collisions, probes and skips
	}
	var cases []ringCase
	for _, endpoints := range endpointSets {
		ring := newHashRing(endpoints)
		c := ringCase{Endpoints: endpoints, Items: len(ring.items), Digest: digest(ring)}
		for _, service := range services {
			key := serviceKey(t, service)
			c.Lookups = append(c.Lookups, lookup{service, key, ring.endpointFor([]byte(key))})
		}
		cases = append(cases, c)
	}
	out, err := json.MarshalIndent(cases, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv("RING_REFERENCE_OUT"), out, 0o644); err != nil {
		t.Fatal(err)
	}
}
