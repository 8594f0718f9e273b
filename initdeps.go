package lddynamodb

import "github.com/launchdarkly/go-jsonstream/v3/jreader"

// What Init must write before what: the items that a serialized flag or segment uses, read from
// its JSON, and the links that make the engine (initengine.go) hold a put until they are written.

// itemRef names an item of one kind.
type itemRef struct{ kind, key string }

// linkUses makes each put wait for the puts of the items it uses. Uses of items that this Init
// does not write need no wait. A cycle (which the SDK's own sort also cannot order) is cut where
// the walk closes it, so that the engine never waits forever.
func linkUses(order []*initWrite, puts map[itemRef]*initWrite, uses map[*initWrite][]itemRef) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[*initWrite]int{}
	var visit func(w *initWrite)
	visit = func(w *initWrite) {
		state[w] = visiting
		for _, ref := range uses[w] {
			used := puts[ref]
			if used == nil || used == w {
				continue
			}
			switch state[used] {
			case visiting:
				continue // closes a cycle
			case unvisited:
				visit(used)
			}
			used.users = append(used.users, w)
			w.waiting++
		}
		state[w] = done
	}
	for _, w := range order {
		if state[w] == unvisited {
			visit(w)
		}
	}
}

// itemUses lists the items that a serialized flag or segment uses, read as a stream without
// building the SDK's model: prerequisites (flags) and the values of segmentMatch clauses in rules
// (segments). Parts that do not parse give no uses: they cannot name an item.
func itemUses(data []byte) []itemRef {
	var refs []itemRef
	r := jreader.NewReader(data)
	for obj := r.ObjectOrNull(); obj.Next(); {
		switch string(obj.Name()) {
		case "prerequisites":
			for arr := r.ArrayOrNull(); arr.Next(); {
				for pre := r.ObjectOrNull(); pre.Next(); {
					if string(pre.Name()) == "key" {
						if key, ok := r.StringOrNull(); ok {
							refs = append(refs, itemRef{"features", key})
						}
					}
				}
			}
		case "rules":
			for arr := r.ArrayOrNull(); arr.Next(); {
				for rule := r.ObjectOrNull(); rule.Next(); {
					if string(rule.Name()) == "clauses" {
						refs = append(refs, clauseSegments(&r)...)
					}
				}
			}
		}
	}
	return refs
}

// clauseSegments reads an array of clauses and returns the segments of its segmentMatch ones.
func clauseSegments(r *jreader.Reader) []itemRef {
	var refs []itemRef
	for arr := r.ArrayOrNull(); arr.Next(); {
		var op string
		var values []string
		for clause := r.ObjectOrNull(); clause.Next(); {
			switch string(clause.Name()) {
			case "op":
				op, _ = r.StringOrNull()
			case "values":
				for vals := r.ArrayOrNull(); vals.Next(); {
					v := r.Any()
					switch v.Kind {
					case jreader.StringValue:
						values = append(values, v.String)
					case jreader.ArrayValue:
						for v.Array.Next() {
						}
					case jreader.ObjectValue:
						for v.Object.Next() {
						}
					}
				}
			}
		}
		if op == "segmentMatch" {
			for _, key := range values {
				refs = append(refs, itemRef{"segments", key})
			}
		}
	}
	return refs
}
