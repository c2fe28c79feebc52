package config

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// scalarOrList reads a setting's value: a scalar, or a list of scalars (joined by commas: tags,
// temp-names).
func scalarOrList(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "", errors.New("no value")
		}
		return n.Value, nil
	case yaml.SequenceNode:
		var items []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("want a list of plain values, not of %s", kindNames(c))
			}
			items = append(items, c.Value)
		}
		return strings.Join(items, ","), nil
	}
	return "", fmt.Errorf("want a value, not %s", kindName(n))
}

// kindName names what n is, with its article, for "want a value, not a list".
func kindName(n *yaml.Node) string { return kindWords(n)[0] }

// kindNames names what n is, for "not of lists".
func kindNames(n *yaml.Node) string { return kindWords(n)[1] }

// kindWords names what n is: one, with its article, and many.
func kindWords(n *yaml.Node) [2]string {
	switch n.Kind {
	case yaml.MappingNode:
		return [2]string{"a mapping", "mappings"}
	case yaml.SequenceNode:
		return [2]string{"a list", "lists"}
	case yaml.AliasNode:
		return [2]string{"an alias", "aliases"}
	}
	return [2]string{"a value", "values"}
}
