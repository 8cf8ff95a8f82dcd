package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Where a kept .deb came from.
const (
	FromArchives   = "archives"   // apt's cache, /var/cache/apt/archives
	FromDownload   = "downloaded" // apt-get download from the configured sources
	FromRebuild    = "rebuilt"    // rebuilt from the installed files (Rebuild)
	RebuildNeeded  = "rebuild-needed"
	keepFileSuffix = ".deb"
)

// Kept is one previous version and the .deb that reinstalls it.
type Kept struct {
	Pin
	// Deb is the file's path inside the system ("" when none could be
	// kept); SHA256 its digest.
	Deb    string `json:"deb,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// Source is FromArchives, FromDownload, FromRebuild or RebuildNeeded.
	Source string `json:"source"`
	// Error says why neither the cache, the sources nor a rebuild gave it.
	Error string `json:"error,omitempty"`
}

// keep makes sure dir (inside the system) holds a .deb of pin: from
// apt's archive cache, else downloaded with apt-get download, else
// rebuilt from the installed files.
func keep(ctx context.Context, r runner, pin Pin, dir string, log *tailBuffer) Kept {
	k := Kept{Pin: pin}
	arch := pin.Arch
	cached := filepath.Join("/var/cache/apt/archives", debFileName(pin.Package, pin.Version, arch))
	var errs []string
	if err := checkDeb(ctx, r.host(cached), pin); err == nil {
		dst := filepath.Join(dir, filepath.Base(cached))
		if err := copyFile(r.host(cached), r.host(dst)); err != nil {
			errs = append(errs, "copy from archives: "+err.Error())
		} else {
			return k.found(r, dst, FromArchives)
		}
	}
	tmp := filepath.Join(dir, "download-"+pin.Package)
	// Only root may write where the file lands between apt's download and
	// our check and rename: a directory others can write would let them
	// swap the package a rollback later installs as root. apt then
	// downloads as root rather than as _apt, and says so in a warning.
	if err := os.MkdirAll(r.host(tmp), 0o700); err != nil {
		k.Source, k.Error = RebuildNeeded, err.Error()
		return k
	}
	defer os.RemoveAll(r.host(tmp))
	if _, err := r.combined(ctx, log, tmp, "apt-get", "download", "-q", pin.String()); err != nil {
		errs = append(errs, "apt-get download: "+err.Error())
	} else if files, _ := filepath.Glob(filepath.Join(r.host(tmp), pin.Package+"_*.deb")); len(files) != 1 {
		errs = append(errs, fmt.Sprintf("apt-get download left %d files", len(files)))
	} else if err := checkDeb(ctx, files[0], pin); err != nil {
		errs = append(errs, err.Error())
	} else {
		dst := filepath.Join(dir, filepath.Base(files[0]))
		if err := os.Rename(files[0], r.host(dst)); err != nil {
			errs = append(errs, err.Error())
		} else {
			return k.found(r, dst, FromDownload)
		}
	}
	dst := filepath.Join(dir, debFileName(pin.Package, pin.Version, arch))
	if err := Rebuild(ctx, r.root, pin, r.host(dst)); err != nil {
		errs = append(errs, "rebuild: "+err.Error())
		k.Source, k.Error = RebuildNeeded, strings.Join(errs, "; ")
		return k
	}
	return k.found(r, dst, FromRebuild)
}

func (k Kept) found(r runner, deb, source string) Kept {
	k.Deb, k.Source = deb, source
	sum, err := fileSHA256(r.host(deb))
	if err != nil {
		k.Source, k.Error = RebuildNeeded, err.Error()
		return k
	}
	k.SHA256 = sum
	return k
}

// debFileName is apt's name for a package file: name_version_arch.deb
// with the epoch's colon written %3a.
func debFileName(name, version, arch string) string {
	return name + "_" + strings.ReplaceAll(version, ":", "%3a") + "_" + arch + keepFileSuffix
}

// checkDeb makes sure path is a .deb of exactly pin (dpkg-deb on this
// machine reads it; nothing is run in the system).
func checkDeb(ctx context.Context, path string, pin Pin) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	local, _ := newRunner("/")
	out, err := local.output(ctx, "dpkg-deb", "--show", "--showformat=${Package}\t${Version}\t${Architecture}", path)
	if err != nil {
		return err
	}
	want := pin.Package + "\t" + pin.Version + "\t" + pin.Arch
	if strings.TrimSpace(out) != want {
		return fmt.Errorf("%s is %q, not %q", filepath.Base(path), out, want)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
