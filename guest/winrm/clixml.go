package winrm

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
)

// clixmlMarker starts the serialized error records powershell.exe writes
// on stderr when it runs -EncodedCommand with redirected streams.
var clixmlMarker = []byte("#< CLIXML")

// decodeCLIXML turns the CLIXML part of a PowerShell stderr into text: the
// error records' lines, warnings prefixed "WARNING: ", progress and other
// records dropped. Text before the marker (raw writes to stderr) is kept.
// Input without the marker, or that does not parse, is returned as is.
func decodeCLIXML(stderr []byte) []byte {
	i := bytes.Index(stderr, clixmlMarker)
	if i < 0 || (i > 0 && stderr[i-1] != '\n') {
		return stderr
	}
	out := append([]byte(nil), stderr[:i]...)
	rest := bytes.TrimLeft(stderr[i+len(clixmlMarker):], "\r\n")
	dec := xml.NewDecoder(bytes.NewReader(rest))
	var kind string
	var text strings.Builder
	inS := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return stderr
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == "S" {
				inS, kind = true, ""
				text.Reset()
				for _, a := range t.Attr {
					if a.Name.Local == "S" {
						kind = a.Value
					}
				}
			}
		case xml.CharData:
			if inS {
				text.Write(t)
			}
		case xml.EndElement:
			if t.Name.Local == "S" && inS {
				inS = false
				switch kind {
				case "Error":
					out = append(out, unescapeCLIXML(text.String())...)
				case "Warning":
					out = append(out, "WARNING: "+unescapeCLIXML(text.String())...)
				}
			}
		}
	}
	return out
}

// unescapeCLIXML decodes the _xHHHH_ escapes of CLIXML strings.
func unescapeCLIXML(s string) string {
	if !strings.Contains(s, "_x") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '_' && i+7 <= len(s) && s[i+1] == 'x' && s[i+6] == '_' {
			if n, err := strconv.ParseUint(s[i+2:i+6], 16, 16); err == nil {
				b.WriteRune(rune(n))
				i += 6
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
