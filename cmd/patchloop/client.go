package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/pki"
)

// clientFlags are the connection flags of the client commands.
type clientFlags struct {
	server, token, caFingerprint, dataDir, format string
}

func (c *clientFlags) add(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.server, "server", envOr("PATCHLOOP_SERVER", "https://localhost:8443"), "server URL ($PATCHLOOP_SERVER)")
	f.StringVar(&c.token, "token", os.Getenv("PATCHLOOP_TOKEN"), "admin token ($PATCHLOOP_TOKEN; default: DATA_DIR/admin.token)")
	f.StringVar(&c.caFingerprint, "ca-fingerprint", os.Getenv("PATCHLOOP_CA_FINGERPRINT"), "SHA-256 fingerprint of the server's CA ($PATCHLOOP_CA_FINGERPRINT; default: that of DATA_DIR/ca.pem)")
	f.StringVar(&c.dataDir, "data-dir", "/var/lib/patchloop", "server data directory, read for the defaults of --token and --ca-fingerprint")
	f.StringVar(&c.format, "format", "table", "output: table or json")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// adminClient calls the admin API.
type adminClient struct {
	base, token string
	http        *http.Client
}

func (c *clientFlags) client() (*adminClient, error) {
	if c.format != "table" && c.format != "json" {
		return nil, fmt.Errorf("--format must be 'table' or 'json', not %q", c.format)
	}
	tok := c.token
	if tok == "" {
		data, err := os.ReadFile(filepath.Join(c.dataDir, "admin.token"))
		if err != nil {
			return nil, fmt.Errorf("no --token and %v", err)
		}
		tok = strings.TrimSpace(string(data))
	}
	fpr := c.caFingerprint
	if fpr == "" {
		data, err := os.ReadFile(filepath.Join(c.dataDir, "ca.pem"))
		if err != nil {
			return nil, fmt.Errorf("no --ca-fingerprint and %v", err)
		}
		cert, err := pki.ParseCert(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", filepath.Join(c.dataDir, "ca.pem"), err)
		}
		fpr = pki.Fingerprint(cert)
	}
	tlsConf, err := pki.PinnedTLS(fpr, nil)
	if err != nil {
		return nil, err
	}
	return &adminClient{base: strings.TrimRight(c.server, "/"), token: tok,
		http: &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tlsConf}}}, nil
}

func (a *adminClient) call(ctx context.Context, method, path string, body, out any) error {
	if body == nil {
		return a.send(ctx, method, path, "", nil, out)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return a.send(ctx, method, path, "application/json", b, out)
}

// send sends a body of the given Content-Type ("" for none) and decodes
// the JSON answer into out. An error answer becomes an error with the
// server's reason, and its details each on a line of their own.
func (a *adminClient) send(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	var rd io.Reader
	if contentType != "" {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		if len(e.Details) > 1 {
			e.Error = strings.Join(e.Details, "\n")
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func pathID(id string) string { return url.PathEscape(id) }
