package main

import (
	"io"
	"strings"
	"text/tabwriter"
)

// table writes aligned columns (two spaces apart). Cells are cleaned of
// tabs and line breaks, so a VM name cannot break the layout.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

var cellCleaner = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ", "\v", " ", "\f", " ")

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = cellCleaner.Replace(c)
	}
	io.WriteString(t.tw, strings.Join(cells, "\t")+"\n")
}

func (t *table) flush() error { return t.tw.Flush() }
