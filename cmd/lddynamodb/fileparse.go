package main

// Reading a flags file token by token, so that a mistake is reported where it is: the section,
// the key and the field, and for a JSON file the line and column, rather than the Go type that
// encoding/json or the SDK was filling. YAML is converted to JSON first, so its mistakes are
// named by section, key and field only.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/ghodss/yaml.v1"
)

// fileSections are the sections a flags file may have.
const fileSections = `"flags", "flagValues", "segments" and "deleted"`

// fileDecoder reads a flags file's JSON and says where in it a token is.
type fileDecoder struct {
	dec  *json.Decoder
	src  []byte
	yaml bool   // src is converted from YAML: its offsets are not the file's
	at   string // the item being read, for messages
	key  int64  // where the key being read starts
}

// decodeFlagsFile parses the file's top level. Unlike the file data source it refuses sections it
// does not know, so that a misspelt section is not read as an empty one, and a key given twice in
// a section, which a JSON decoder would silently read as the last one.
func decodeFlagsFile(raw []byte) (flagsFile, error) {
	d := &fileDecoder{src: raw}
	if !strings.HasPrefix(strings.TrimLeftFunc(string(raw), unicode.IsSpace), "{") {
		converted, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return flagsFile{}, fmt.Errorf("not JSON (it does not start with '{') nor YAML: %w", err)
		}
		d.src, d.yaml = converted, true
	}
	d.dec = json.NewDecoder(bytes.NewReader(d.src))
	data := flagsFile{itemAt: map[string]int64{}, src: d.src}
	if d.yaml {
		data.src = nil
	}
	err := d.object("the file", func(section string) error {
		d.at = ""
		switch section {
		case "flags":
			return d.items(section, &data.Flags, data.itemAt)
		case "segments":
			return d.items(section, &data.Segments, data.itemAt)
		case "flagValues":
			return d.items(section, &data.FlagValues, data.itemAt)
		case "deleted":
			data.Deleted = &deletedItems{}
			return d.object("deleted", func(kind string) error {
				switch kind {
				case "flags":
					return d.versions("deleted.flags", &data.Deleted.Flags)
				case "segments":
					return d.versions("deleted.segments", &data.Deleted.Segments)
				}
				return d.errorAt(d.key, `unknown section "deleted.%s": "deleted" has "flags" and "segments"`, kind)
			})
		}
		return d.errorAt(d.key, `unknown section %q: a flags file has %s`, section, fileSections)
	})
	if err != nil {
		return flagsFile{}, err
	}
	if _, err := d.dec.Token(); err != io.EOF {
		return flagsFile{}, d.errorf("more after the end of the file's object")
	}
	return data, nil
}

// object reads a JSON object, calling field for each key with the decoder before its value.
func (d *fileDecoder) object(what string, field func(key string) error) error {
	start := d.offset()
	tok, err := d.dec.Token()
	if err != nil {
		return d.tokenError(err)
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '{' {
		return d.errorAt(start, "%s must be a JSON object", what)
	}
	for d.dec.More() {
		d.key = d.offset()
		tok, err := d.dec.Token()
		if err != nil {
			return d.tokenError(err)
		}
		if err := field(tok.(string)); err != nil {
			return err
		}
	}
	if _, err := d.dec.Token(); err != nil {
		return d.tokenError(err)
	}
	return nil
}

// items reads a section of items by key, keeping each item's JSON as it is and its offset.
func (d *fileDecoder) items(section string, into *map[string]json.RawMessage, itemAt map[string]int64) error {
	*into = map[string]json.RawMessage{}
	return d.object(fmt.Sprintf("%q", section), func(key string) error {
		d.at = fmt.Sprintf("%s %q", section, key)
		if _, dup := (*into)[key]; dup {
			return d.errorAt(d.key, "%s is given twice in the section", d.at)
		}
		at := d.offset()
		var raw json.RawMessage
		if err := d.dec.Decode(&raw); err != nil {
			return d.tokenError(err)
		}
		(*into)[key] = raw
		itemAt[section+"\x00"+key] = at
		return nil
	})
}

// versions reads a section of deleted items: their keys and versions.
func (d *fileDecoder) versions(section string, into *map[string]int) error {
	*into = map[string]int{}
	return d.object(fmt.Sprintf("%q", section), func(key string) error {
		d.at = fmt.Sprintf("%s %q", section, key)
		if _, dup := (*into)[key]; dup {
			return d.errorAt(d.key, "%s is given twice in the section", d.at)
		}
		at := d.offset()
		var version int
		if err := d.dec.Decode(&version); err != nil {
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) {
				return d.errorAt(at, "%s: the version must be a whole number, not %s", d.at, article(typeErr.Value))
			}
			return d.tokenError(err)
		}
		(*into)[key] = version
		return nil
	})
}

// offset is where the next value starts: past the white space, colon or comma before it.
func (d *fileDecoder) offset() int64 {
	off := d.dec.InputOffset()
	for off < int64(len(d.src)) && strings.IndexByte(" \t\r\n:,", d.src[off]) >= 0 {
		off++
	}
	return off
}

// tokenError describes a JSON syntax error or a truncated file, with where it is.
func (d *fileDecoder) tokenError(err error) error {
	var syntax *json.SyntaxError
	in := ""
	if d.at != "" {
		in = " (in " + d.at + ")"
	}
	switch {
	case errors.As(err, &syntax):
		// A Decoder's syntax error points at the start of the value it was reading;
		// Unmarshal's, which checks the whole text first, at the character itself.
		if errors.As(json.Unmarshal(d.src, new(any)), &syntax) {
			return d.errorAt(syntax.Offset-1, "invalid JSON%s: %v", in, syntax)
		}
		return d.errorAt(syntax.Offset, "invalid JSON%s: %v", in, syntax)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return d.errorAt(int64(len(d.src)), "the file ends before its JSON does%s: is it cut short?", in)
	}
	return err
}

func (d *fileDecoder) errorf(format string, args ...any) error {
	return d.errorAt(d.dec.InputOffset(), format, args...)
}

// errorAt prefixes the message with the line and column of offset, in a JSON file.
func (d *fileDecoder) errorAt(offset int64, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if d.yaml {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", position(d.src, offset), msg)
}

// position is "line L, column C" of a byte offset, counting from 1 and columns in characters.
func position(src []byte, offset int64) string {
	offset = min(max(offset, 0), int64(len(src)))
	before := src[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	column := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return fmt.Sprintf("line %d, column %d", line, column)
}

// pathAt is the path ("rules[0].clauses[1].op") of the innermost value of a JSON document that
// starts at offset or contains it, and where that value starts and ends.
func pathAt(doc []byte, offset int64) (path string, start, end int64) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	found := false
	next := func() int64 {
		off := dec.InputOffset()
		for off < int64(len(doc)) && strings.IndexByte(" \t\r\n:,", doc[off]) >= 0 {
			off++
		}
		return off
	}
	var walk func(p string) error
	walk = func(p string) error {
		from := next()
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return err
				}
				if err := walk(strings.TrimPrefix(p+"."+key.(string), ".")); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(fmt.Sprintf("%s[%d]", p, i)); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
		}
		if to := dec.InputOffset(); !found && from <= offset && offset < to {
			path, start, end, found = p, from, to, true
		}
		return nil
	}
	_ = walk("")
	return path, start, end
}

// describeItemError says what the SDK found wrong in an item's JSON: for a value of the wrong
// type, the field, what the SDK expected and what it got, instead of the Go type it was filling.
func describeItemError(item []byte, err error) (msg string, offset int64) {
	var typeErr *json.UnmarshalTypeError
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		path, start, end := pathAt(item, typeErr.Offset)
		got := string(item[start:end])
		if len(got) > 40 {
			got = got[:37] + "..."
		}
		field := "the item"
		if path != "" {
			field = fmt.Sprintf("field %q", path)
		}
		return fmt.Sprintf("%s must be %s, not %s", field, article(typeErr.Value), got), typeErr.Offset
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON: %v", syntax), syntax.Offset
	}
	return err.Error(), -1
}

// article puts "a" or "an" before a JSON kind's name ("a boolean", "an array").
func article(kind string) string {
	if kind != "" && strings.IndexByte("aeiou", kind[0]) >= 0 {
		return "an " + kind
	}
	return "a " + kind
}
