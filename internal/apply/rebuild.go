package apply

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// controlScripts are the files of /var/lib/dpkg/info/PKG.* that go back
// into a rebuilt package's DEBIAN directory.
var controlScripts = []string{"preinst", "postinst", "prerm", "postrm", "config", "templates", "triggers", "shlibs", "symbols"}

// Rebuild makes a .deb at out (a path on this machine) of the installed
// version of pin on the system at root, as dpkg-repack does: the control
// record from dpkg's database, the maintainer scripts and conffiles list
// from /var/lib/dpkg/info, and the installed files as they are now
// (conffiles with the administrator's changes). It is the last resort
// when neither apt's cache nor the sources have the version any more.
// The installed version must be pin's and fully installed.
func Rebuild(ctx context.Context, root string, pin Pin, out string) error {
	r, err := newRunner(root)
	if err != nil {
		return err
	}
	name := pin.name()
	if pin.Arch == "" {
		name = pin.Package
	}
	rec, err := r.output(ctx, "dpkg-query", "--status", name)
	if err != nil {
		return err
	}
	control, status, version := controlRecord(rec)
	if version != pin.Version {
		return fmt.Errorf("%s %s is installed, not %s", pin.Package, version, pin.Version)
	}
	if status != "install ok installed" && status != "hold ok installed" {
		return fmt.Errorf("%s is %q, not installed", pin.Package, status)
	}
	files, err := r.output(ctx, "dpkg-query", "--listfiles", name)
	if err != nil {
		return err
	}
	tree, err := os.MkdirTemp(filepath.Dir(out), ".rebuild-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tree)
	if err := os.Chmod(tree, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(tree, "DEBIAN"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tree, "DEBIAN/control"), []byte(control), 0o644); err != nil {
		return err
	}
	info := infoFiles(r, pin)
	for _, s := range controlScripts {
		if src, ok := info[s]; ok {
			mode := os.FileMode(0o755)
			if s == "templates" || s == "triggers" || s == "shlibs" || s == "symbols" {
				mode = 0o644
			}
			if err := copyMode(src, filepath.Join(tree, "DEBIAN", s), mode); err != nil {
				return err
			}
		}
	}
	if src, ok := info["conffiles"]; ok {
		if err := writeConffiles(src, filepath.Join(tree, "DEBIAN/conffiles")); err != nil {
			return err
		}
	}
	var paths []string
	parents := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(files))
	for sc.Scan() {
		path := sc.Text()
		if path == "/." || path == "" || strings.HasPrefix(path, "package diverts others to: ") || strings.HasPrefix(path, "diverted by ") || strings.HasPrefix(path, "locally diverted to: ") {
			continue
		}
		paths = append(paths, path)
		parents[filepath.Dir(path)] = true
	}
	for _, path := range paths {
		// A directory of the package that the system made a symbolic
		// link (/lib → usr/lib with merged /usr) goes back as a directory.
		if err := copyEntry(r.host(path), filepath.Join(tree, path), parents[path]); err != nil {
			return fmt.Errorf("rebuild %s: %w", pin.Package, err)
		}
	}
	local, _ := newRunner("/")
	if _, err := local.output(ctx, "dpkg-deb", "--build", "-Zxz", tree, out); err != nil {
		return err
	}
	// It holds the conffiles as they are now, some readable by root only.
	return os.Chmod(out, 0o600)
}

// controlRecord turns `dpkg-query --status` into a DEBIAN/control:
// without the fields dpkg adds to its database.
func controlRecord(rec string) (control, status, version string) {
	var b strings.Builder
	skip := false
	for _, line := range strings.Split(strings.TrimRight(rec, "\n"), "\n") {
		if line != "" && (line[0] == ' ' || line[0] == '\t') {
			if !skip {
				b.WriteString(line + "\n")
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		switch field {
		case "Status":
			status, skip = value, true
			continue
		case "Conffiles", "Config-Version":
			skip = true
			continue
		case "Version":
			version = value
		}
		skip = false
		b.WriteString(line + "\n")
	}
	return b.String(), status, version
}

// infoFiles maps the suffixes of the package's /var/lib/dpkg/info files
// (postinst, conffiles, ...) to their paths on this machine.
func infoFiles(r runner, pin Pin) map[string]string {
	m := map[string]string{}
	for _, prefix := range []string{pin.Package + ":" + pin.Arch + ".", pin.Package + "."} {
		matches, _ := filepath.Glob(r.host("/var/lib/dpkg/info/" + prefix + "*"))
		for _, f := range matches {
			suffix := strings.TrimPrefix(filepath.Base(f), prefix)
			if _, ok := m[suffix]; !ok && !strings.Contains(suffix, ".") {
				m[suffix] = f
			}
		}
	}
	return m
}

// writeConffiles writes the conffiles list; dpkg's info file may carry
// flags after the path ("remove-on-upgrade"), which a package's own
// conffiles list does too, so lines are copied as they are.
func writeConffiles(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

func copyMode(src, dst string, mode os.FileMode) error {
	if err := copyFile(src, dst); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// copyEntry copies one file, directory or symbolic link with its mode
// and owner (directories without their contents); asDir follows a
// symbolic link to a directory. A path the package lists but that is
// gone is skipped, as dpkg-repack does.
func copyEntry(src, dst string, asDir bool) error {
	stat := os.Lstat
	if asDir {
		stat = os.Stat
	}
	fi, err := stat(src)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.IsDir():
		if err := os.Mkdir(dst, fi.Mode().Perm()); err != nil && !os.IsExist(err) {
			return err
		}
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case fi.Mode().IsRegular():
		if err := copyFile(src, dst); err != nil {
			return err
		}
	default:
		return nil // devices, fifos: not in packages
	}
	if st != nil {
		if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		// After chown, which clears set-id bits.
		return os.Chmod(dst, fi.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky))
	}
	return nil
}
