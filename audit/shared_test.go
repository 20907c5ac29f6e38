package audit

import (
	"path/filepath"
	"sync"
	"testing"
)

// Two Shared writers (as in two processes) write one chain.
func TestSharedOneChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	w1, w2 := &Shared{Path: path}, &Shared{Path: path}
	var wg sync.WaitGroup
	for _, w := range []*Shared{w1, w2} {
		wg.Go(func() {
			for range 20 {
				if _, err := w.Append(Record{Kind: "ca.request"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	sum, err := Verify(path)
	if err != nil || sum.Records != 40 {
		t.Errorf("chain: %v, %v", sum, err)
	}
}
