package winrmserver_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	azure "github.com/Azure/go-ntlmssp"

	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
)

const createShell = `<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"><s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Create</a:Action><a:MessageID>uuid:1</a:MessageID></s:Header><s:Body/></s:Envelope>`

func newServer(t *testing.T, o winrmserver.Options) *winrmserver.Server {
	t.Helper()
	o.User, o.Domain, o.Password = "ops", "CORP", "right"
	srv, err := winrmserver.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// unsealedPost sends the message as go-ntlmssp does (the NTLM handshake
// carries the plain SOAP body), one connection for the exchange.
func unsealedPost(t *testing.T, srv *winrmserver.Server) int {
	t.Helper()
	tr := &http.Transport{MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: azure.Negotiator{RoundTripper: tr}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/wsman", strings.NewReader(createShell))
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(`CORP\ops`, "right")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestUnsealedHTTPRefused: over plain HTTP, an NTLM-authenticated but
// unsealed message gets 401 and creates nothing, as on Windows with
// AllowUnencrypted=false; with AllowUnencrypted it is served.
func TestUnsealedHTTPRefused(t *testing.T) {
	strict := newServer(t, winrmserver.Options{PlainHTTP: true})
	if code := unsealedPost(t, strict); code != http.StatusUnauthorized {
		t.Fatalf("unsealed message over HTTP: HTTP %d, want 401", code)
	}
	if st := strict.Stats(); st.ShellsCreated != 0 || st.UnencryptedRefused != 1 || st.Handshakes != 1 || st.AuthFailures != 0 {
		t.Fatalf("stats: %+v", st)
	}
	lax := newServer(t, winrmserver.Options{PlainHTTP: true, AllowUnencrypted: true})
	if code := unsealedPost(t, lax); code != http.StatusOK {
		t.Fatalf("unsealed message with AllowUnencrypted: HTTP %d", code)
	}
	if st := lax.Stats(); st.ShellsCreated != 1 {
		t.Fatalf("stats: %+v", st)
	}
}
