package main

// How verify and dump read large items: a flag or segment over DynamoDB's 400 KB item limit is a
// main row in its kind's namespace that names a set of part rows in the kind's parts namespace
// (docs/table.md). A kind is read with one Query of its namespace and one of its parts
// namespace; parts sort by key, so the parts of one item's write are consecutive, and only one
// item's parts are held at a time. A writer may replace a large item between the two Queries:
// an item whose parts were not found is read again (a GetItem and a Query of its parts) before
// it is reported.

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"

	"github.com/lddynamodb/lddynamodb"
)

// partSet is the part rows of one write of a large item, which share a sort key prefix.
type partSet struct {
	prefix string
	rows   []map[string]types.AttributeValue
	bytes  int // their sizes by lddynamodb.RowSize
}

// list is the part rows, none for a nil set (a row without parts).
func (p *partSet) list() []map[string]types.AttributeValue {
	if p == nil {
		return nil
	}
	return p.rows
}

func (p *partSet) add(row map[string]types.AttributeValue) {
	p.rows = append(p.rows, row)
	p.bytes += lddynamodb.RowSize(row)
}

// orphanParts is a set of parts that no main row names: a crash left it behind, or a write was in
// progress while it was read. why says what the main row of its item is instead.
type orphanParts struct {
	namespace string
	prefix    string
	parts     int
	bytes     int
	why       string
}

func (o orphanParts) String() string {
	return fmt.Sprintf("orphan parts %q... in %q: %d parts, %d bytes; %s", o.prefix, o.namespace, o.parts, o.bytes, o.why)
}

// kindReader reads the rows of one kind under a prefix with their parts.
type kindReader struct {
	client *dynamodb.Client
	table  string
	prefix string
	kind   ldstoretypes.DataKind
	prog   *progress

	// item is called for every main row, with its parts (nil for a row without parts).
	item func(row map[string]types.AttributeValue, parts *partSet)
	// orphan, if set, is called for every set of orphan parts; the parts namespace is then read
	// even when no main row has parts.
	orphan func(orphanParts)
}

// read reads the kind: one Query of its namespace, one of its parts namespace when needed, and a
// GetItem and a Query for each large item that changed in between.
func (r *kindReader) read(ctx context.Context) error {
	namespace := lddynamodb.Namespace(r.prefix, r.kind)
	versions := map[string]int{} // the version of every main row, by key
	pending := map[string]map[string]types.AttributeValue{}
	err := queryNamespace(ctx, r.client, r.table, namespace, "", r.prog, func(row map[string]types.AttributeValue) {
		key, _ := stringAttr(row, lddynamodb.AttrKey)
		versions[key] = versionOf(row)
		if _, keyPrefix, count := lddynamodb.LargeRowParts(row); count > 0 {
			pending[keyPrefix] = row
			return
		}
		r.item(row, nil)
	})
	if err != nil || (len(pending) == 0 && r.orphan == nil) {
		return err
	}
	partsNamespace := lddynamodb.PartsNamespace(r.prefix, r.kind)
	var orphans []orphanParts
	finish := func(set *partSet) {
		if set == nil {
			return
		}
		if row, ok := pending[set.prefix]; ok {
			if _, _, count := lddynamodb.LargeRowParts(row); len(set.rows) >= count {
				delete(pending, set.prefix)
				r.item(row, set)
			}
			return
		}
		orphans = append(orphans, orphanParts{namespace: partsNamespace, prefix: set.prefix, parts: len(set.rows), bytes: set.bytes})
	}
	var set *partSet
	err = queryNamespace(ctx, r.client, r.table, partsNamespace, "", r.prog, func(row map[string]types.AttributeValue) {
		prefix := partPrefix(row)
		if set == nil || prefix != set.prefix {
			finish(set)
			set = &partSet{prefix: prefix}
		}
		set.add(row)
	})
	if err != nil {
		return err
	}
	finish(set)
	for keyPrefix, row := range pending {
		named, err := r.reread(ctx, namespace, keyPrefix, row, versions)
		if err != nil {
			return err
		}
		for i := range orphans {
			if orphans[i].prefix == named {
				orphans[i].prefix = "" // its item was replaced while it was read: not an orphan
			}
		}
	}
	if r.orphan == nil {
		return nil
	}
	for _, o := range orphans {
		if o.prefix != "" {
			o.why = orphanReason(o.prefix, versions)
			r.orphan(o)
		}
	}
	return nil
}

// reread reads a large item whose parts were not all found, in case a writer replaced it between
// the Queries, and hands it over with the parts found now; DecodeRowWithParts then names what is
// still missing. An item deleted meanwhile is dropped. It returns the parts prefix of the row read.
func (r *kindReader) reread(ctx context.Context, namespace, keyPrefix string, row map[string]types.AttributeValue,
	versions map[string]int) (string, error) {
	key, _ := stringAttr(row, lddynamodb.AttrKey)
	out, err := r.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(r.table),
		Key:            keyOf(namespace, key),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return "", fmt.Errorf("table %q: get %s %q: %w", r.table, r.kind, key, err)
	}
	if out.Item == nil {
		delete(versions, key)
		return "", nil
	}
	row = out.Item
	versions[key] = versionOf(row)
	partsNamespace, newPrefix, count := lddynamodb.LargeRowParts(row)
	if count == 0 {
		r.item(row, nil)
		return "", nil
	}
	set := &partSet{prefix: newPrefix}
	if err := queryNamespace(ctx, r.client, r.table, partsNamespace, newPrefix, nil, set.add); err != nil {
		return "", err
	}
	r.item(row, set)
	return newPrefix, nil
}

// partPrefix is the sort key of a part row up to its position: what the parts of one write of an
// item share ("KEY/VERSION/PARTSID/"). A key with no "/", which the store never writes, is its
// own prefix, so that it is reported as an orphan.
func partPrefix(row map[string]types.AttributeValue) string {
	key, _ := stringAttr(row, lddynamodb.AttrKey)
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[:i+1]
	}
	return key
}

// attrVersion is the attribute that holds every flag and segment row's version (docs/table.md).
const attrVersion = "version"

// versionOf is a row's version, or -1 if it has none that can be read.
func versionOf(row map[string]types.AttributeValue) int {
	v, ok := row[attrVersion].(*types.AttributeValueMemberN)
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(v.Value)
	if err != nil {
		return -1
	}
	return n
}

// orphanReason says why no main row names a set of parts, from its prefix "KEY/VERSION/PARTSID/"
// and the versions of the kind's main rows.
func orphanReason(prefix string, versions map[string]int) string {
	fields := strings.Split(strings.TrimSuffix(prefix, "/"), "/")
	if len(fields) < 3 {
		return "its key is not one the store writes"
	}
	key, version := strings.Join(fields[:len(fields)-2], "/"), fields[len(fields)-2]
	current, ok := versions[key]
	switch {
	case !ok:
		return fmt.Sprintf("no item %q", key)
	case strconv.Itoa(current) == version:
		return fmt.Sprintf("item %q at version %s names other parts", key, version)
	default:
		return fmt.Sprintf("item %q is at version %d, these are of version %s", key, current, version)
	}
}
