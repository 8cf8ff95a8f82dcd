package apply

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Process is a running process that still maps files which were deleted
// or replaced (an upgraded library, or its own upgraded executable).
type Process struct {
	PID     int      `json:"pid"`
	Command string   `json:"command"` // /proc/PID/comm
	Exe     string   `json:"exe,omitempty"`
	Deleted []string `json:"deleted"` // paths inside the system
	// Unit is the systemd unit from /proc/PID/cgroup ("" outside one);
	// System is set when it is a unit of the system manager, not of a
	// user's (user.slice).
	Unit   string `json:"unit,omitempty"`
	System bool   `json:"system,omitempty"`
}

// Restart lists what should be restarted after an install.
type Restart struct {
	Processes []Process `json:"processes,omitempty"`
	// Services are the system services (*.service units) among them, to
	// restart with systemctl; processes outside a service (user sessions,
	// shells) are only in Processes.
	Services []string `json:"services,omitempty"`
}

// RestartNeeded looks, as needrestart does, through procDir (/proc
// normally) for processes of the system at root ("/" for this machine:
// all processes; otherwise those chrooted into root) that map deleted
// files. Mappings that are not files of the system (memfd, SysV shared
// memory, /dev, /run, /tmp and the like) are ignored. Processes that
// vanish while being read are skipped.
func RestartNeeded(procDir, root string) (Restart, error) {
	var out Restart
	r, err := newRunner(root)
	if err != nil {
		return out, err
	}
	rootReal := r.root
	if r.chrooted() {
		if p, err := filepath.EvalSymlinks(r.root); err == nil {
			rootReal = p
		}
	}
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return out, err
	}
	self := os.Getpid()
	services := map[string]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		dir := filepath.Join(procDir, e.Name())
		if r.chrooted() {
			if pr, _ := os.Readlink(filepath.Join(dir, "root")); pr != rootReal {
				continue
			}
		}
		f, err := os.Open(filepath.Join(dir, "maps"))
		if err != nil {
			continue // gone, or a kernel thread we may not read
		}
		deleted := DeletedMappings(f, rootReal)
		f.Close()
		if len(deleted) == 0 {
			continue
		}
		p := Process{PID: pid, Deleted: deleted}
		if comm, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
			p.Command = strings.TrimSpace(string(comm))
		}
		p.Exe, _ = os.Readlink(filepath.Join(dir, "exe"))
		if cg, err := os.Open(filepath.Join(dir, "cgroup")); err == nil {
			p.Unit, p.System = CgroupUnit(cg)
			cg.Close()
		}
		if p.System && strings.HasSuffix(p.Unit, ".service") {
			services[p.Unit] = true
		}
		out.Processes = append(out.Processes, p)
	}
	for s := range services {
		out.Services = append(out.Services, s)
	}
	sort.Strings(out.Services)
	return out, nil
}

// ignoredMapping matches mapped paths that are not files a package
// installs (needrestart's blacklist_mappings, in spirit).
var ignoredMapping = regexp.MustCompile(`^/(SYSV[0-9a-f]+|memfd:|dev/|run/|var/run/|tmp/|var/tmp/|proc/|sys/|drm|i915|\[aio\]|home/|root/|var/lib/docker/|var/cache/)`)

// DeletedMappings returns the distinct files a /proc/PID/maps lists as
// "(deleted)", as paths inside the system whose root is at root on this
// machine ("/" for none): a mapping outside root is not the system's.
func DeletedMappings(maps io.Reader, root string) []string {
	var out []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(maps)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// address perms offset dev inode pathname
		f := strings.SplitN(sc.Text(), " ", 6)
		if len(f) < 6 || f[4] == "0" {
			continue
		}
		path, ok := strings.CutSuffix(strings.TrimLeft(f[5], " "), " (deleted)")
		if !ok || !strings.HasPrefix(path, "/") {
			continue
		}
		if root != "/" && root != "" {
			rel, ok := strings.CutPrefix(path, strings.TrimSuffix(root, "/")+"/")
			if !ok {
				continue
			}
			path = "/" + rel
		}
		if ignoredMapping.MatchString(path) || seen[path] {
			continue
		}
		seen[path] = true
		out = append(out, path)
	}
	return out
}

// CgroupUnit returns the systemd unit of a /proc/PID/cgroup: the last
// path element ending in .service or .scope of the unified (0::) or
// name=systemd hierarchy, "" when there is none; system is false for
// units under user.slice (a user's session or services).
func CgroupUnit(cgroup io.Reader) (unit string, system bool) {
	sc := bufio.NewScanner(cgroup)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || !(parts[0] == "0" && parts[1] == "" || parts[1] == "name=systemd") {
			continue
		}
		elems := strings.Split(parts[2], "/")
		for i := len(elems) - 1; i >= 0; i-- {
			if strings.HasSuffix(elems[i], ".service") || strings.HasSuffix(elems[i], ".scope") {
				return elems[i], !strings.HasPrefix(parts[2], "/user.slice/")
			}
		}
	}
	return "", false
}
