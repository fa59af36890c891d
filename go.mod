module github.com/managedvm/managedvm

go 1.26

require (
	github.com/kdomanski/iso9660 v0.4.0
	gopkg.in/yaml.v3 v3.0.1
)
