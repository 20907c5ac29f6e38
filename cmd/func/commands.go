package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gofunc/gofunc/internal/groupsfile"
	"github.com/gofunc/gofunc/overlord"
)

// submit records the call as a job and, unless --async-runner=none,
// starts a detached `func jobs run ID` to carry it out, so the job
// outlives this process.
func (e *env) submit(c *overlord.Client, sel *overlord.Selection, module, method string, args []any) int {
	job, err := sel.Submit(e.ctx, module, method, args...)
	if err != nil {
		return e.failure(err)
	}
	if e.cli.AsyncRunner == "exec" {
		if err := e.detachRunner(job.ID); err != nil {
			fmt.Fprintf(e.stderr, "func: job %s queued, but its runner did not start: %v (run `func jobs run %s`)\n", job.ID, err, job.ID)
			return exitFailed
		}
	}
	e.print(map[string]any{"job": job.ID, "hosts": job.Hosts}, func() {
		fmt.Fprintln(e.stdout, job.ID)
	})
	return exitOK
}

// detachRunner starts this program again as `func --dir DIR jobs run
// ID` in its own session, not waited for: the job's heartbeat in the
// store tells whether it is alive.
func (e *env) detachRunner(id string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"--dir", e.dir(), "--forks", fmt.Sprint(e.cli.Forks), "--timeout", e.cli.Timeout.String(),
		"--log-level", e.cli.LogLevel, "jobs", "run", id}
	cmd := exec.Command(self, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	logPath := filepath.Join(e.dir(), "jobs", id+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

func (e *env) copyfile() int {
	cmdArgs := e.cli.Spec.Copyfile
	data, err := os.ReadFile(cmdArgs.Local)
	if err != nil {
		return e.usage(err)
	}
	c := e.client()
	defer e.close(c)
	sel, err := e.selection(c, e.cli.Spec.Spec)
	if err != nil {
		return e.usage(err)
	}
	res, err := sel.CopyFile(e.ctx, cmdArgs.Remote, data, overlord.CopyOptions{Mode: cmdArgs.Mode,
		Owner: cmdArgs.Owner, Group: cmdArgs.Group, Backup: cmdArgs.Backup})
	if res == nil {
		return e.failure(err)
	}
	return e.showResults(c, res)
}

// getfile stores each host's copy as LOCALDIR/HOST/BASENAME, written
// to disk chunk by chunk as it arrives and renamed into place once its
// checksum matched (overlord.Files: bounded by --max-size and the free
// space), and reports, per host, the path written.
func (e *env) getfile() int {
	cmdArgs := e.cli.Spec.Getfile
	c := e.client()
	defer e.close(c)
	sel, err := e.selection(c, e.cli.Spec.Spec)
	if err != nil {
		return e.usage(err)
	}
	dir := cmdArgs.LocalDir
	if dir == "" {
		dir = "."
	}
	base := filepath.Base(cmdArgs.Remote)
	if base == "." || base == ".." || base == string(filepath.Separator) {
		return e.usage(fmt.Errorf("getfile: %q names no file", cmdArgs.Remote))
	}
	files := &overlord.Files{Dir: dir, Name: base, MaxBytes: int64(cmdArgs.MaxSize)}
	res, err := sel.GetFileTo(e.ctx, cmdArgs.Remote, files.Open)
	if res == nil {
		return e.failure(err)
	}
	for h, r := range res {
		if m, ok := r.Value.(map[string]any); ok && r.Err == nil {
			m["path"] = files.Path(h)
		}
	}
	return e.showResults(c, res)
}

// safeName makes a host or module name one harmless path element: "/",
// "\\" and NUL become "_", and so do leading dots, so that "..", "."
// and ".git" can never name the parent, the directory itself or the
// repository's own data; an empty name becomes "_".
func safeName(name string) string {
	out := []rune(name)
	for i, r := range out {
		if r == '/' || r == '\\' || r == 0 {
			out[i] = '_'
		}
	}
	for i := 0; i < len(out) && out[i] == '.'; i++ {
		out[i] = '_'
	}
	if len(out) == 0 {
		return "_"
	}
	return string(out)
}

// inventory snapshots every host's inventory into DIR/inventory (a git
// repository, one directory per host, one JSON file per module), commits
// it, and prints what changed since the previous snapshot.
func (e *env) inventory() int {
	c := e.client()
	defer e.close(c)
	sel, err := e.selection(c, e.cli.Spec.Spec)
	if err != nil {
		return e.usage(err)
	}
	res, err := sel.Inventory(e.ctx)
	e.cm.reportDropped(e.cli.Spec.Spec)
	if res == nil {
		return e.failure(err)
	}
	repo := filepath.Join(e.dir(), "inventory")
	if err := writeInventory(repo, res); err != nil {
		return e.failure(err)
	}
	changes, err := commitInventory(e.ctx, repo)
	if err != nil {
		return e.failure(err)
	}
	code := exitOK
	if len(res.Failed()) > 0 {
		code = exitFailed
	}
	x := e.explainer(c)
	present := callPresenter(x, humanValue)
	outcomes := make([]hostOutcome, 0, len(res))
	for _, h := range res.Hosts() {
		outcomes = append(outcomes, present(res[h]))
	}
	e.print(map[string]any{"hosts": resultsJSON(res, x), "changes": changes}, func() {
		for _, o := range outcomes {
			if o.problem {
				fmt.Fprintf(e.stdout, "%s: %s\n", o.host, o.body)
			}
		}
		if changes == "" {
			fmt.Fprintf(e.stdout, "inventory of %d hosts: no changes\n", len(res)-len(res.Failed()))
		} else {
			fmt.Fprintf(e.stdout, "inventory of %d hosts: changes\n%s", len(res)-len(res.Failed()), changes)
		}
	})
	if !e.cli.Quiet {
		fmt.Fprintln(e.stderr, summaryLine(outcomes))
	}
	return code
}

func writeInventory(repo string, res overlord.Results) error {
	for h, r := range res {
		if r.Err != nil {
			continue // keep its last snapshot
		}
		modules, _ := r.Value.(map[string]any)
		hostDir := filepath.Join(repo, safeName(h))
		if filepath.Dir(hostDir) != filepath.Clean(repo) {
			return fmt.Errorf("inventory: host name %q is not a path element", h) // never RemoveAll outside it
		}
		if err := os.RemoveAll(hostDir); err != nil {
			return err
		}
		if err := os.MkdirAll(hostDir, 0o700); err != nil {
			return err
		}
		for m, v := range modules {
			b, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				return fmt.Errorf("inventory %s %s: %w", h, m, err)
			}
			if err := os.WriteFile(filepath.Join(hostDir, safeName(m)+".json"), append(b, '\n'), 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}

// commitInventory commits the snapshot and returns `git show --stat`
// of the new commit, or "" when nothing changed.
func commitInventory(ctx context.Context, repo string) (string, error) {
	git := func(args ...string) (string, error) {
		full := append([]string{"-C", repo, "-c", "user.name=gofunc", "-c", "user.email=gofunc@localhost",
			"-c", "commit.gpgsign=false"}, args...)
		cmd := exec.CommandContext(ctx, "git", full...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(errOut.String()))
		}
		return out.String(), nil
	}
	if _, err := os.Stat(filepath.Join(repo, ".git")); errors.Is(err, os.ErrNotExist) {
		if _, err := git("init", "-q"); err != nil {
			return "", err
		}
	}
	if _, err := git("add", "-A", "."); err != nil {
		return "", err
	}
	status, err := git("status", "--porcelain")
	if err != nil || strings.TrimSpace(status) == "" {
		return "", err
	}
	if _, err := git("commit", "-q", "-m", "inventory "+time.Now().UTC().Format(time.RFC3339)); err != nil {
		return "", err
	}
	return git("show", "--stat", "--format=commit %h %s", "HEAD")
}

func (e *env) groupsPath() string { return filepath.Join(e.dir(), overlord.GroupsFile) }

func (e *env) groupList() int {
	groups, err := overlord.LoadGroups(e.groupsPath())
	if err != nil {
		return e.failure(err)
	}
	e.print(groups, func() {
		for _, name := range slices.Sorted(maps.Keys(groups)) {
			fmt.Fprintf(e.stdout, "%s\t%s\n", name, groups[name])
		}
	})
	return exitOK
}

func (e *env) groupEdit(name string, specs []string, remove bool) int {
	spec, err := groupsfile.Edit(e.groupsPath(), name, strings.Join(specs, ";"), remove)
	if err != nil {
		return e.failure(err)
	}
	removed := remove && len(specs) == 0
	e.print(map[string]any{"group": name, "spec": spec, "removed": removed}, func() {
		if removed {
			fmt.Fprintf(e.stdout, "%s removed\n", name)
		} else {
			fmt.Fprintf(e.stdout, "%s\t%s\n", name, spec)
		}
	})
	return exitOK
}

func (e *env) groupShow(name string) int {
	c := e.client()
	defer e.close(c)
	hosts, err := c.Targets("@" + name).Hosts(e.ctx)
	if err != nil {
		return e.failure(err)
	}
	e.print(hosts, func() {
		for _, h := range hosts {
			fmt.Fprintln(e.stdout, h)
		}
	})
	return exitOK
}

// jobJSON is a job in --json output.
type jobJSON struct {
	ID       string              `json:"id"`
	State    string              `json:"state"`
	Method   string              `json:"method"`
	Spec     string              `json:"spec"`
	Hosts    int                 `json:"hosts"`
	Answered int                 `json:"answered"`
	Failed   int                 `json:"failed"`
	Created  time.Time           `json:"created"`
	Finished *time.Time          `json:"finished,omitempty"`
	Error    string              `json:"error,omitempty"`
	Results  map[string]hostJSON `json:"results,omitempty"`
	// Broker jobs (--broker) only: who submitted it, until when a
	// minion may start it, and how many targets expired.
	Broker  bool       `json:"broker,omitempty"`
	Caller  string     `json:"caller,omitempty"`
	StartBy *time.Time `json:"start_by,omitempty"`
	Expired int        `json:"expired,omitempty"`
}

func toJobJSON(j *overlord.Job, x explainer) jobJSON {
	out := jobJSON{ID: j.ID, State: string(j.State), Method: j.Method, Spec: j.Spec, Hosts: len(j.Hosts),
		Answered: j.Answered, Failed: j.Failed, Created: j.Created, Error: j.Error}
	if !j.Finished.IsZero() {
		out.Finished = &j.Finished
	}
	if j.Results != nil {
		out.Results = resultsJSON(j.Results, x)
	}
	return out
}

func (e *env) jobsList() int {
	c := e.client()
	defer e.close(c)
	jobs, err := c.Jobs(e.ctx)
	if err != nil {
		return e.failure(err)
	}
	list := make([]jobJSON, len(jobs))
	for i, j := range jobs {
		list[i] = toJobJSON(j, e.explainer(c))
	}
	code := exitOK
	if len(e.cli.Broker) > 0 {
		// The local jobs are listed even when the broker is away: said
		// on stderr, and the exit status tells the list is partial.
		more, err := e.brokerJobs()
		if err != nil {
			fmt.Fprintf(e.stderr, "func: the broker's jobs are not listed: %v\n", err)
			code = exitFailed
		}
		list = append(list, more...)
	}
	e.print(list, func() {
		for _, j := range list {
			spec := j.Spec
			if j.Broker {
				spec += fmt.Sprintf(" (broker, by %s, start by %s, %d expired)", j.Caller, j.StartBy.Local().Format(time.DateTime), j.Expired)
			}
			fmt.Fprintf(e.stdout, "%s\t%s\t%s\t%d/%d answered, %d failed\t%s\t%s\n", j.ID, j.State, j.Method,
				j.Answered, j.Hosts, j.Failed, j.Created.Local().Format(time.DateTime), spec)
		}
	})
	return code
}

func (e *env) jobStatus(id string) int {
	if isBrokerJob(id) {
		return e.brokerJob(id, false)
	}
	c := e.client()
	defer e.close(c)
	j, err := c.Job(e.ctx, id)
	if err != nil {
		return e.failure(err)
	}
	return e.printJob(j, e.explainer(c))
}

func (e *env) printJob(j *overlord.Job, x explainer) int {
	e.print(toJobJSON(j, x), func() {
		fmt.Fprintf(e.stdout, "job %s: %s, %s on %d hosts, %d answered, %d failed\n", j.ID, j.State, j.Method,
			len(j.Hosts), j.Answered, j.Failed)
		if j.Error != "" {
			fmt.Fprintln(e.stdout, "error:", j.Error)
		}
		if len(j.Results) > 0 {
			present := callPresenter(x, humanValue)
			var outcomes []hostOutcome
			for _, h := range j.Results.Hosts() {
				outcomes = append(outcomes, present(j.Results[h]))
			}
			writeGrouped(e.stdout, outcomes)
		}
	})
	return jobExit(j)
}

// jobExit is the exit code a job's state and results deserve: 0 only
// when it is done and every host succeeded.
func jobExit(j *overlord.Job) int {
	if j.State == overlord.JobDone && j.Failed == 0 {
		return exitOK
	}
	return exitFailed
}

func (e *env) jobWait(id string) int {
	if isBrokerJob(id) {
		return e.brokerJob(id, true)
	}
	c := e.client()
	defer e.close(c)
	j, err := c.WaitJob(e.ctx, id)
	if err != nil {
		return e.failure(err)
	}
	if j.State == overlord.JobFailed {
		return e.failure(j.Err())
	}
	code := e.showResults(c, j.Results)
	return max(code, jobExit(j))
}

func (e *env) jobRun(id string) int {
	c := e.client()
	defer e.close(c)
	j, err := c.RunJob(e.ctx, id)
	if err != nil {
		return e.failure(err)
	}
	return jobExit(j)
}

func (e *env) jobDelete(id string) int {
	c := e.client()
	defer e.close(c)
	if err := c.DeleteJob(e.ctx, id); err != nil {
		return e.failure(err)
	}
	e.print(map[string]any{"deleted": id}, func() {})
	return exitOK
}
