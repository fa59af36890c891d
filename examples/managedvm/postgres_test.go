package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/managedvm/managedvm/errs"
)

// pgConfig writes the embedded defaults with the Store, the CMDB and the
// IPAM in PostgreSQL (a schema of its own, dropped at the end), and
// returns the file.
func pgConfig(t *testing.T) string {
	t.Helper()
	base := os.Getenv("MANAGEDVM_PG_URL")
	if base == "" {
		msg := "MISSING COMPONENT postgresql: set MANAGEDVM_PG_URL (bash .ci/run starts one)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true)")
		}
		t.Skip(msg)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	schema := "mvm_host_" + strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(randomToken(6)))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	t.Setenv("MVM_TEST_DSN", u.String())
	y := string(defaultsYAML)
	for _, r := range [][2]string{
		{"store: {driver: memory}", "store: {driver: postgresql}"},
		{"cmdb: {driver: memory}", "cmdb: {driver: postgresql}"},
		{"  driver: memory\n  pools:", "  driver: postgresql\n  pools:"},
		{"# postgresql:\n#   dsn_env: MANAGEDVM_PG_URL", "postgresql:\n  dsn_env: MVM_TEST_DSN"},
	} {
		if !strings.Contains(y, r[0]) {
			t.Fatalf("defaults.yaml lacks %q", r[0])
		}
		y = strings.Replace(y, r[0], r[1], 1)
	}
	path := filepath.Join(t.TempDir(), "pg.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Each command-line run is its own process state: with PostgreSQL drivers
// what one run did, the next one sees (the simulated vCenter's VM IDs are
// the same in every run).
func TestPostgreSQLAcrossRuns(t *testing.T) {
	cfg := pgConfig(t)
	r := cli(t, canary+"\n", "enroll", "-config", cfg, "-password-file", "-", "web-01")
	wantExit(t, r, errs.OK)
	r = cli(t, "", "show", "-config", cfg, "-json", "web-01")
	wantExit(t, r, errs.OK)
	var d Device
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatal(err)
	}
	if d.State != "enrolled" || d.PublicIP != "203.0.113.5" {
		t.Fatalf("a later run sees web-01 %s at %q, want enrolled at 203.0.113.5", d.State, d.PublicIP)
	}
	// The address is held in PostgreSQL: the next VM gets the next one.
	r = cli(t, canary+"\n", "enroll", "-config", cfg, "-json", "-password-file", "-", "web-02")
	wantExit(t, r, errs.OK)
	var res resultJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.PublicIP != "203.0.113.6" {
		t.Fatalf("web-02: %v %+v, want 203.0.113.6", err, res)
	}
	r = cli(t, canary+"\n", "unenroll", "-config", cfg, "-password-file", "-", "web-01")
	wantExit(t, r, errs.OK)
	r = cli(t, "", "devices", "-config", cfg, "-json", "-state", "enrolled")
	wantExit(t, r, errs.OK)
	var devs []Device
	if err := json.Unmarshal([]byte(r.stdout), &devs); err != nil || len(devs) != 1 || devs[0].Name != "web-02" {
		t.Fatalf("enrolled after unenrolling web-01: %v %+v", err, devs)
	}
	// A DSN that cannot be reached is Unavailable, without its password.
	t.Setenv("MVM_TEST_DSN", "postgres://u:canary-pw@127.0.0.1:1/db?connect_timeout=2")
	r = cli(t, "", "devices", "-config", cfg)
	wantExit(t, r, errs.Unavailable)
	if strings.Contains(r.stderr, "canary-pw") {
		t.Errorf("the DSN's password appears in the error:\n%s", r.stderr)
	}
}
