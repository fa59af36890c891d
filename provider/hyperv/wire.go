package hyperv

// The answers of the templates, as the scripts write them: every scalar
// is a string (enums through [string], numbers and booleans too), so the
// driver's decoding does not depend on how Windows PowerShell 5.1 writes
// enums (as numbers) or how large numbers come out.

// wireVM is one VM (the hashtable of vmj in scripts.go).
type wireVM struct {
	ID        string        `json:"Id"`
	Name      string        `json:"Name"`
	State     string        `json:"State"`
	CPUs      string        `json:"CPUs"`
	Memory    string        `json:"Memory"` // MemoryStartup, bytes
	Gen       string        `json:"Gen"`
	Clustered string        `json:"Clustered"` // "True" / "False"
	Notes     string        `json:"Notes"`
	Heartbeat string        `json:"Heartbeat"`
	IS        string        `json:"IS"` // IntegrationServicesState
	Node      string        `json:"Node"`
	Adapters  []wireAdapter `json:"Adapters"`
}

type wireAdapter struct {
	Mac      string   `json:"Mac"`
	Switch   string   `json:"Switch"`
	IPs      []string `json:"IPs"`
	VlanMode string   `json:"VlanMode"`
	Vlan     string   `json:"Vlan"`
}

type inventoryAnswer struct {
	V    string   `json:"V"`
	Node string   `json:"Node"`
	VMs  []wireVM `json:"VMs"`
}

type getAnswer struct {
	V    string  `json:"V"`
	Node string  `json:"Node"`
	VM   *wireVM `json:"VM"`
}

type clusterAnswer struct {
	V        string       `json:"V"`
	Node     string       `json:"Node"`
	Cluster  string       `json:"Cluster"`
	Domain   string       `json:"Domain"`
	Nodes    []wireNode   `json:"Nodes"`
	CSVs     []wireCSV    `json:"CSVs"`
	Switches []wireSwitch `json:"Switches"`
}

type wireNode struct {
	Name  string `json:"Name"`
	State string `json:"State"` // Up, Down, Paused, Joining
}

type wireCSV struct {
	Name  string `json:"Name"`
	State string `json:"State"` // Online, ...
	Owner string `json:"Owner"`
	Path  string `json:"Path"` // C:\ClusterStorage\Volume1
}

type wireSwitch struct {
	Name string `json:"Name"`
	Type string `json:"Type"` // External, Internal, Private
}

type eventsAnswer struct {
	V      string      `json:"V"`
	Node   string      `json:"Node"`
	Oldest string      `json:"Oldest"` // "" when the log is empty
	Last   string      `json:"Last"`
	Events []wireEvent `json:"Events"`
}

type wireEvent struct {
	RecordID string `json:"RecordId"`
	ID       string `json:"Id"` // 13002 created, 13003 deleted
	VMID     string `json:"VMId"`
	VMName   string `json:"VMName"`
	Time     string `json:"Time"` // round-trip ("o") UTC
}

type templatesAnswer struct {
	V     string     `json:"V"`
	Node  string     `json:"Node"`
	Files []wireVHDX `json:"Files"`
}

type wireVHDX struct {
	Path     string `json:"Path"`
	Format   string `json:"Format"` // VHD, VHDX
	Type     string `json:"Type"`   // Fixed, Dynamic, Differencing
	Size     string `json:"Size"`   // virtual size, bytes
	FileSize string `json:"FileSize"`
	Parent   string `json:"Parent"`
	Meta     string `json:"Meta"` // the sidecar NAME.json's text, "" when none
}

type powerParams struct {
	ID string `json:"Id"`
	On bool   `json:"On"`
}

type powerAnswer struct {
	V     string `json:"V"`
	Node  string `json:"Node"`
	Found string `json:"Found"` // "True" / "False"
	State string `json:"State"`
}

type removeParams struct {
	ID   string `json:"Id"`
	Keep string `json:"Keep"`
}

type removeAnswer struct {
	V       string   `json:"V"`
	Node    string   `json:"Node"`
	Found   string   `json:"Found"`
	Removed []string `json:"Removed"`
	Kept    []string `json:"Kept"`
}

type accountAnswer struct {
	V      string   `json:"V"`
	Node   string   `json:"Node"`
	User   string   `json:"User"`
	Admin  string   `json:"Admin"` // "True" / "False"
	Groups []string `json:"Groups"`
}

type fileParams struct {
	Path   string `json:"Path"`
	Data   string `json:"Data"`   // base64
	Sha256 string `json:"Sha256"` // upper-case hex, as Get-FileHash writes it
}

type fileAnswer struct {
	V      string `json:"V"`
	Node   string `json:"Node"`
	Path   string `json:"Path"`
	Sha256 string `json:"Sha256"`
	Size   string `json:"Size"`
}

type createParams struct {
	Tag    string `json:"Tag"` // the VM's Notes: keyTag(spec.Key)
	Name   string `json:"Name"`
	Gen    int    `json:"Gen"`
	CPUs   int    `json:"CPUs"`
	Memory int64  `json:"Memory"` // bytes
	Parent string `json:"Parent"` // the template's .vhdx
	Disk   string `json:"Disk"`
	Full   bool   `json:"Full"`
	Dir    string `json:"Dir"`
	Switch string `json:"Switch"`
	Vlan   int    `json:"Vlan"`
	ISO    string `json:"ISO"` // "" for none
}

type roleAnswer struct {
	V     string  `json:"V"`
	Node  string  `json:"Node"`
	Found string  `json:"Found"`
	VM    *wireVM `json:"VM"`
}

type undoParams struct {
	Tag   string `json:"Tag"`
	Dir   string `json:"Dir"`
	Under string `json:"Under"`
}

type undoAnswer struct {
	V       string   `json:"V"`
	Node    string   `json:"Node"`
	Removed []string `json:"Removed"`
}

type roleCheckParams struct {
	Name string `json:"Name"`
	Dir  string `json:"Dir"`
}

type roleCheckAnswer struct {
	V     string `json:"V"`
	Node  string `json:"Node"`
	Error string `json:"Error"` // "" when the role was made and removed
}

type switchAnswer struct {
	V           string `json:"V"`
	Node        string `json:"Node"`
	Found       string `json:"Found"`
	Type        string `json:"Type"`        // External, Internal, Private
	Adapter     string `json:"Adapter"`     // the physical adapter of an External switch
	AdapterVlan string `json:"AdapterVlan"` // its VlanID property: "" or "0" when it filters none
}

type guestParams struct {
	ID       string `json:"Id"`
	User     string `json:"User"`
	Password string `json:"Password"`
	Script   string `json:"Script"`
	Stdin    string `json:"Stdin"` // base64
}

type guestAnswer struct {
	V     string `json:"V"`
	Node  string `json:"Node"`
	Found string `json:"Found"`
	State string `json:"State"`
	Error string `json:"Error"` // the session's error text, "" when the script ran
	Out   string `json:"Out"`   // base64
	Err   string `json:"Err"`   // base64
	Code  string `json:"Code"`
}
