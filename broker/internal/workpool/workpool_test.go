package workpool

import (
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Tasks run, each once; workers are kept between tasks while the pool
// has a user, at most MaxIdle of them, and all exit when the last user
// closes (goleak checks it at the end).
func TestPool(t *testing.T) {
	var p Pool
	p.Open()
	p.Open()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ran := make(map[int]int)
	const tasks = 2 * MaxIdle
	for i := range tasks {
		wg.Add(1)
		p.Go(func() {
			defer wg.Done()
			mu.Lock()
			ran[i]++
			mu.Unlock()
		})
	}
	wg.Wait()
	for i := range tasks {
		if ran[i] != 1 {
			t.Fatalf("task %d ran %d times", i, ran[i])
		}
	}
	// The workers park after their task; wait for the pool to hold
	// some (at least one: the last to finish).
	for p.Idle() == 0 {
		wg.Add(1)
		p.Go(wg.Done)
		wg.Wait()
	}
	if n := p.Idle(); n > MaxIdle {
		t.Errorf("%d idle workers, over %d", n, MaxIdle)
	}
	// A kept worker takes the next task.
	idle := p.Idle()
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
	if p.Idle() > idle {
		t.Errorf("a new worker ran the task while %d waited", idle)
	}
	p.Close()
	if p.Idle() == 0 {
		t.Error("the workers left while a user remains")
	}
	p.Close()
	if n := p.Idle(); n != 0 {
		t.Errorf("%d idle workers after the last user closed", n)
	}
	// A task given after the last user closed still runs.
	wg.Add(1)
	p.Go(wg.Done)
	wg.Wait()
}
