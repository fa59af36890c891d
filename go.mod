module github.com/managedvm/managedvm

go 1.26
