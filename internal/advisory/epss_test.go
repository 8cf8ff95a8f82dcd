package advisory

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseEPSSDaily(t *testing.T) {
	data, err := os.ReadFile("testdata/epss/daily-example-1.csv")
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	for name, in := range map[string][]byte{"plain": data, "gzip": gz.Bytes()} {
		e, err := ParseEPSS(name, bytes.NewReader(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if e.Len() != 5 || e.Lines != 5 || e.Bad != 0 || e.ModelVersion != "v2023.03.01" ||
			!e.ScoreDate.Equal(time.Date(2025, 2, 20, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: len %d lines %d bad %d model %q date %v", name, e.Len(), e.Lines, e.Bad, e.ModelVersion, e.ScoreDate)
		}
		if s, ok := e.Lookup("CVE-1999-0005"); !ok || s.EPSS != 0.91963 || s.Percentile != 0.99214 {
			t.Errorf("%s: CVE-1999-0005 = %+v, %v", name, s, ok)
		}
	}
	// A truncated gzip stream is an error, not a shorter file.
	if _, err := ParseEPSS("cut.gz", bytes.NewReader(gz.Bytes()[:gz.Len()-10])); err == nil {
		t.Error("truncated gzip: no error")
	}
}

func TestParseEPSSYearFile(t *testing.T) {
	f, err := os.Open("testdata/epss/CVE_2023_EPSS-head25.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e, err := ParseEPSS("CVE_2023_EPSS-head25.csv", f)
	if err != nil {
		t.Fatal(err)
	}
	if e.Len() != 25 || e.Bad != 0 || e.ModelVersion != "" {
		t.Errorf("len %d bad %d model %q", e.Len(), e.Bad, e.ModelVersion)
	}
	if s, ok := e.Lookup("CVE-2023-7346"); !ok || s.EPSS != 0.0014 || s.Percentile != 0.0386 {
		t.Errorf("CVE-2023-7346 = %+v, %v", s, ok)
	}
}

func TestParseEPSSBadLines(t *testing.T) {
	in := "#model_version:v1\n" +
		"cve,epss,percentile\n" +
		"CVE-2024-0001,0.5,0.9\n" +
		"CVE-2024-0002,1.5,0.9\n" + // line 4: above 1
		"CVE-2024-0003,0.5\n" + // line 5: a field short
		"CVE-2024-00004,0.1,0.1\n" + // line 6: leading zero beyond the padding
		"CVE-2024-0001,0.2,0.2\n" + // line 7: scored again
		"CVE-2024-0005,NaN,0.1\n" + // line 8
		"CVE-2024-0006;0.1;0.1\n" + // line 9: other separator
		strings.Repeat("x", 5000) + "\n" + // line 10: too long
		"\r\n" +
		"CVE-2024-0007,0.25,0.5\r\n" // CRLF, no problem
	e, err := ParseEPSS("scores.csv", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if e.Len() != 2 || e.Lines != 9 || e.Bad != 7 {
		t.Fatalf("len %d lines %d bad %d: %v", e.Len(), e.Lines, e.Bad, e.First)
	}
	for i, want := range []int{4, 5, 6, 7, 8, 9, 10} {
		if p := e.First[i]; p.Line != want || p.File != "scores.csv" {
			t.Errorf("problem %d: %v, want line %d", i, p, want)
		}
	}
}

func TestParseEPSSHeaderChanged(t *testing.T) {
	for _, in := range []string{
		"#model_version:v2025\ncve,epss,percentile,cwe\nCVE-2024-0001,0.5,0.9,CWE-1\n",
		"cve;epss;percentile\n",
		"<html>Service Unavailable</html>\n",
	} {
		_, err := ParseEPSS("epss.csv.gz", strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), "epss.csv.gz line ") {
			t.Errorf("%q: err = %v, want one naming file and line", in, err)
		}
	}
}

// loadEPSSYears loads the per-year files of the real feed.
func loadEPSSYears(tb testing.TB) *EPSS {
	dir := requireFeeds(tb, "epss/EPSS_CVE_data")
	files, err := filepath.Glob(filepath.Join(dir, "CVE_*_EPSS.csv"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no EPSS files in %s: %v", dir, err)
	}
	e := &EPSS{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			tb.Fatal(err)
		}
		err = e.Read(filepath.Base(name), f)
		f.Close()
		if err != nil {
			tb.Fatal(err)
		}
	}
	return e
}

func TestParseEPSSFeed(t *testing.T) {
	start := time.Now()
	e := loadEPSSYears(t)
	t.Logf("EPSS: %d CVEs from %d lines, %d bad, in %v", e.Len(), e.Lines, e.Bad, time.Since(start))
	if e.Len() != 360142 || e.Bad != 0 {
		t.Errorf("len %d bad %d (%v), want 360142, 0", e.Len(), e.Bad, e.First)
	}
}

// BenchmarkParseEPSS parses the real per-year files (360,142 lines).
func BenchmarkParseEPSS(b *testing.B) {
	dir := requireFeeds(b, "epss/EPSS_CVE_data")
	files, _ := filepath.Glob(filepath.Join(dir, "CVE_*_EPSS.csv"))
	var all bytes.Buffer
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		all.Write(data)
	}
	b.SetBytes(int64(all.Len()))
	b.ResetTimer()
	for b.Loop() {
		e, err := ParseEPSS("all", bytes.NewReader(all.Bytes()))
		if err != nil || e.Len() != 360142 {
			b.Fatalf("%d, %v", e.Len(), err)
		}
	}
}
