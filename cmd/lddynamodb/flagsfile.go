package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
)

// flagsFile is the format of the SDK's file data source (ldfiledata), which dump writes and load
// reads, plus a "deleted" section that the file data source ignores: the versions of deleted
// items, so that a dump and load keeps them (a deleted item's version stops an older update
// from bringing it back).
type flagsFile struct {
	Flags      map[string]json.RawMessage `json:"flags"`
	Segments   map[string]json.RawMessage `json:"segments"`
	FlagValues map[string]json.RawMessage `json:"flagValues,omitempty"`
	Deleted    *deletedItems              `json:"deleted,omitempty"`

	// itemAt is where each item's JSON starts in src, by section and key ("flags\x00KEY"), for
	// error messages; src is nil for a YAML file, whose JSON is not what the user wrote.
	itemAt map[string]int64
	src    []byte
}

// deletedItems maps the keys of deleted flags and segments to their versions.
type deletedItems struct {
	Flags    map[string]int `json:"flags,omitempty"`
	Segments map[string]int `json:"segments,omitempty"`
}

// section returns the file's live and deleted items of a kind.
func (f *flagsFile) section(kind ldstoretypes.DataKind) (live map[string]json.RawMessage, deleted map[string]int) {
	var del deletedItems
	if f.Deleted != nil {
		del = *f.Deleted
	}
	if kind == ldstoreimpl.Features() {
		return f.Flags, del.Flags
	}
	return f.Segments, del.Segments
}

// fileName is what the file format calls a kind.
func fileName(kind ldstoretypes.DataKind) string {
	if kind == ldstoreimpl.Features() {
		return "flags"
	}
	return kind.GetName()
}

// readFlagsFile reads a flags file in JSON or YAML, as the file data source does, and returns its
// items for the store's Init: segments before flags, as the SDK gives them, each kind sorted by
// key. The order within a kind does not matter: Init writes every item after the items it uses.
// Every item is parsed by the SDK and must carry its own key; a file with no items at all is
// refused, since loading it would delete everything.
func readFlagsFile(path string) ([]ldstoretypes.SerializedCollection, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	data, err := decodeFlagsFile(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := data.checkDuplicates(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var colls []ldstoretypes.SerializedCollection
	total := 0
	for _, kind := range []ldstoretypes.DataKind{ldstoreimpl.Segments(), ldstoreimpl.Features()} {
		items, err := data.items(kind)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		total += len(items)
		sort.Slice(items, func(i, j int) bool { return items[i].Key < items[j].Key })
		colls = append(colls, ldstoretypes.SerializedCollection{Kind: kind, Items: items})
	}
	if total == 0 {
		return nil, fmt.Errorf(`%s: no flags, flagValues, segments or deleted items; loading it would delete everything under the prefix`, path)
	}
	return colls, nil
}

// checkDuplicates refuses a key that two sections of one kind hold (flags, flagValues and
// deleted.flags; segments and deleted.segments): Init would get the key twice, and DynamoDB
// refuses a batch that writes one key twice after earlier batches were written.
func (f *flagsFile) checkDuplicates() error {
	var del deletedItems
	if f.Deleted != nil {
		del = *f.Deleted
	}
	for _, group := range [][]struct {
		name string
		keys []string
	}{
		{{"flags", sortedKeys(f.Flags)}, {"flagValues", sortedKeys(f.FlagValues)}, {"deleted.flags", sortedKeys(del.Flags)}},
		{{"segments", sortedKeys(f.Segments)}, {"deleted.segments", sortedKeys(del.Segments)}},
	} {
		seen := map[string]string{}
		for _, section := range group {
			for _, key := range section.keys {
				if first, dup := seen[key]; dup {
					return fmt.Errorf("%q is in both %s and %s: give each key once", key, first, section.name)
				}
				seen[key] = section.name
			}
		}
	}
	return nil
}

// items returns the file's items of one kind, live and deleted, each checked.
func (f *flagsFile) items(kind ldstoretypes.DataKind) ([]ldstoretypes.KeyedSerializedItemDescriptor, error) {
	live, deleted := f.section(kind)
	name := fileName(kind)
	var items []ldstoretypes.KeyedSerializedItemDescriptor
	for _, key := range sortedKeys(live) {
		item, offset, err := parseItem(kind, key, live[key])
		if err != nil {
			if at, ok := f.itemAt[name+"\x00"+key]; ok && f.src != nil && offset >= 0 {
				return nil, fmt.Errorf("%s: %s %q: %w", position(f.src, at+offset), name, key, err)
			}
			return nil, fmt.Errorf("%s %q: %w", name, key, err)
		}
		items = append(items, ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: item})
	}
	if kind == ldstoreimpl.Features() {
		for key, raw := range f.FlagValues {
			var value ldvalue.Value
			if err := json.Unmarshal(raw, &value); err != nil {
				return nil, fmt.Errorf("flagValues %q: %w", key, err)
			}
			// As the file data source does: a flag that serves the value to everyone.
			flag := ldbuilders.NewFlagBuilder(key).SingleVariation(value).Build()
			desc := ldstoretypes.ItemDescriptor{Version: flag.Version, Item: &flag}
			items = append(items, ldstoretypes.KeyedSerializedItemDescriptor{Key: key,
				Item: ldstoretypes.SerializedItemDescriptor{Version: flag.Version, SerializedItem: kind.Serialize(desc)}})
		}
	}
	for key, version := range deleted {
		desc := ldstoretypes.ItemDescriptor{Version: version}
		items = append(items, ldstoretypes.KeyedSerializedItemDescriptor{Key: key,
			Item: ldstoretypes.SerializedItemDescriptor{Version: version, Deleted: true, SerializedItem: kind.Serialize(desc)}})
	}
	return items, nil
}

// parseItem checks one item as the SDK would read it from the table, and keeps its JSON as it is
// (compacted), so that a dump and load writes back the very same rows. An error comes with the
// offset in raw that it is about, or -1.
func parseItem(kind ldstoretypes.DataKind, key string, raw json.RawMessage) (ldstoretypes.SerializedItemDescriptor, int64, error) {
	var none ldstoretypes.SerializedItemDescriptor
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return none, -1, err
	}
	desc, err := kind.Deserialize(raw)
	if err != nil {
		msg, offset := describeItemError(raw, err)
		return none, offset, fmt.Errorf("the SDK cannot parse it: %s", msg)
	}
	parsed := ldvalue.Parse(compact.Bytes())
	for _, field := range []string{"true", "false"} {
		if parsed.GetByKey(field).IsDefined() {
			return none, -1, fmt.Errorf(`it has a field %q, which is how YAML 1.1 reads a bare on: or off: (or yes:, no:); quote the key, as in "on": true`, field)
		}
	}
	if jsonKey := parsed.GetByKey("key").StringValue(); jsonKey != key {
		return none, -1, fmt.Errorf(`its "key" is %q; it must be the same as the key it is listed under`, jsonKey)
	}
	return ldstoretypes.SerializedItemDescriptor{Version: desc.Version, Deleted: desc.Item == nil, SerializedItem: compact.Bytes()}, -1, nil
}
