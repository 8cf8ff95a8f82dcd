package changelog

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

const tinyChangelog = "hello (1.0-2) unstable; urgency=high\n\n  * Fix CVE-2025-0002.\n\n -- A <a@b>  Mon, 01 Jan 2024 09:00:00 +0000\n"

func TestReadDebReal(t *testing.T) {
	tests := []struct {
		deb, pkg string
		source   string
		entries  int
		newest   string
	}{
		{sambaDeb, "samba-ad-dc", "samba", 91, "2:4.17.12+dfsg-0+deb12u2"},
		{ldbDeb, "python3-ldb-dev", "samba", 91, "2:4.17.12+dfsg-0+deb12u2"},
		// jq also ships the upstream changelog.gz, which must be ignored.
		{jqDeb, "jq", "jq", 6, "1.6-2.1+deb12u3"},
	}
	for _, tt := range tests {
		f, err := os.Open("testdata/" + tt.deb)
		must(t, err)
		log, err := ReadDeb(f, tt.deb, tt.pkg, false)
		f.Close()
		must(t, err)
		if log.Source != tt.source || len(log.Entries) != tt.entries || log.Entries[0].Version != tt.newest {
			t.Errorf("%s: source %s, %d entries, newest %s", tt.deb, log.Source, len(log.Entries), log.Entries[0].Version)
		}
	}
}

func TestReadDebDocDirSymlink(t *testing.T) {
	f, err := os.Open("testdata/" + sftpDeb)
	must(t, err)
	defer f.Close()
	_, err = ReadDeb(f, sftpDeb, "openssh-sftp-server", false)
	var dl *DocLinkError
	if !errors.As(err, &dl) || dl.TargetPackage != "openssh-client" || !IsGap(err) {
		t.Fatalf("err = %v, want a DocLinkError to openssh-client", err)
	}
	want := sftpDeb + ": changelog in package openssh-client (/usr/share/doc/openssh-sftp-server is a symlink to openssh-client)"
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}
}

func TestReadDebCompressions(t *testing.T) {
	for _, comp := range []string{"", "gz", "xz", "zst", "bz2", "lzma"} {
		t.Run("data.tar."+comp, func(t *testing.T) {
			deb := buildDeb(t, comp,
				tarEntry{name: "./usr/"}, tarEntry{name: "./usr/bin/hello", body: []byte("binary")},
				tarEntry{name: "./usr/share/doc/hello/changelog.Debian.gz", body: gzChangelog(t, tinyChangelog)})
			log, err := ReadDeb(bytes.NewReader(deb), "hello.deb", "hello", false)
			must(t, err)
			if len(log.Entries) != 1 || log.Entries[0].CVEs[0] != "CVE-2025-0002" {
				t.Errorf("got %+v", log)
			}
		})
	}
}

func TestReadDebCases(t *testing.T) {
	gz := gzChangelog(t, tinyChangelog)
	corruptGz := bytes.Clone(gz)
	corruptGz[len(corruptGz)-6] ^= 0xff // CRC
	tests := []struct {
		name    string
		deb     []byte
		native  bool
		wantErr string // "" means success
	}{
		{"native changelog.gz", buildDeb(t, "xz", tarEntry{name: "usr/share/doc/hello/changelog.gz", body: gz}), true, ""},
		{"upstream changelog.gz ignored", buildDeb(t, "xz", tarEntry{name: "usr/share/doc/hello/changelog.gz", body: gz}), false,
			"hello.deb: no changelog.Debian.gz in /usr/share/doc/hello"},
		{"no doc dir", buildDeb(t, "gz", tarEntry{name: "./usr/bin/hello", body: []byte("x")}), false,
			"hello.deb: no /usr/share/doc/hello in the package"},
		{"changelog symlink", buildDeb(t, "gz", tarEntry{name: "./usr/share/doc/hello/changelog.Debian.gz", link: "../libhello1/changelog.Debian.gz"}), false,
			"hello.deb: changelog in package libhello1 (/usr/share/doc/hello/changelog.Debian.gz is a symlink to ../libhello1/changelog.Debian.gz)"},
		{"absolute doc link", buildDeb(t, "gz", tarEntry{name: "./usr/share/doc/hello", link: "/usr/share/doc/hello-common"}), false,
			"changelog in package hello-common (/usr/share/doc/hello is a symlink to /usr/share/doc/hello-common)"},
		{"corrupt changelog gz", buildDeb(t, "gz", tarEntry{name: "./usr/share/doc/hello/changelog.Debian.gz", body: corruptGz}), false,
			"hello.deb: /usr/share/doc/hello/changelog.Debian.gz"},
		{"changelog not gzip", buildDeb(t, "gz", tarEntry{name: "./usr/share/doc/hello/changelog.Debian.gz", body: []byte(tinyChangelog)}), false,
			"hello.deb: /usr/share/doc/hello/changelog.Debian.gz: gzip: invalid header"},
		{"corrupt data.tar.xz", corruptMember(t, buildDeb(t, "xz", tarEntry{name: "./usr/share/doc/hello/changelog.Debian.gz", body: gz}), "data.tar.xz"), false,
			"hello.deb: data.tar.xz: "},
		{"corrupt data.tar.gz", corruptMember(t, buildDeb(t, "gz", tarEntry{name: "./usr/share/doc/hello/changelog.Debian.gz", body: gz}), "data.tar.gz"), false,
			"hello.deb: data.tar.gz: "},
		{"unknown compression", []byte(strings.Replace(string(buildDeb(t, "gz")), "data.tar.gz ", "data.tar.foo", 1)), false,
			`hello.deb: data.tar.foo: unsupported compression ".foo"`},
		{"not a deb", []byte("PK\x03\x04 zip file"), false, "hello.deb: not a Debian package"},
		{"no data member", arArchive(t, [][2]string{{"debian-binary", "2.0\n"}}), false, "hello.deb: no data.tar member"},
		{"truncated", buildDeb(t, "gz", tarEntry{name: "./usr/share/doc/hello/changelog.Debian.gz", body: gz})[:150], false, "hello.deb: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, err := ReadDeb(bytes.NewReader(tt.deb), "hello.deb", "hello", tt.native)
			if tt.wantErr == "" {
				must(t, err)
				if len(log.Entries) != 1 {
					t.Errorf("got %+v", log)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// corruptMember flips bytes in the middle of the named ar member.
func corruptMember(t *testing.T, deb []byte, member string) []byte {
	deb = bytes.Clone(deb)
	i := bytes.Index(deb, []byte(member))
	if i < 0 {
		t.Fatalf("no member %s", member)
	}
	start := i + arHeaderSize
	for j := start + 20; j < start+40; j++ {
		deb[j] ^= 0x55
	}
	return deb
}
