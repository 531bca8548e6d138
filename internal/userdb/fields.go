package userdb

import "strings"

// Field is one "key=value" extra field of a passdb or userdb reply.
type Field struct {
	Key, Value string
}

// Fields is an ordered list of extra fields with unique keys, in the order
// they were first set (the order doveadm user prints them in).
type Fields []Field

// Get returns the value of key and whether it is set.
func (f Fields) Get(key string) (string, bool) {
	for _, kv := range f {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// Value returns the value of key, "" when unset.
func (f Fields) Value(key string) string {
	v, _ := f.Get(key)
	return v
}

// Has reports whether key is set.
func (f Fields) Has(key string) bool {
	_, ok := f.Get(key)
	return ok
}

// Set sets key to value, replacing an earlier value in place.
func (f *Fields) Set(key, value string) {
	for i, kv := range *f {
		if kv.Key == key {
			(*f)[i].Value = value
			return
		}
	}
	*f = append(*f, Field{key, value})
}

// Delete removes key.
func (f *Fields) Delete(key string) {
	for i, kv := range *f {
		if kv.Key == key {
			*f = append((*f)[:i:i], (*f)[i+1:]...)
			return
		}
	}
}

// Clone returns a copy that can be changed without touching f.
func (f Fields) Clone() Fields {
	if f == nil {
		return nil
	}
	return append(Fields(nil), f...)
}

// String renders the fields as Dovecot writes them: space-separated
// "key=value", a bare "key" for an empty value.
func (f Fields) String() string {
	var b strings.Builder
	for i, kv := range f {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv.Key)
		if kv.Value != "" {
			b.WriteByte('=')
			b.WriteString(kv.Value)
		}
	}
	return b.String()
}

// ParseFields reads a space-separated list of "key=value" tokens as in
// default_fields, override_fields, static args and passwd-file extra
// fields. A token without "=" is a key with an empty value ("nopassword",
// "nologin"). Values are kept unexpanded.
func ParseFields(s string) Fields {
	var f Fields
	for _, tok := range strings.Fields(s) {
		k, v, _ := strings.Cut(tok, "=")
		if k == "" {
			continue
		}
		f.Set(k, v)
	}
	return f
}

// Template is a parsed default_fields or override_fields setting: fields
// whose values are expanded per lookup.
type Template struct {
	fields Fields
}

// ParseTemplate parses a default_fields/override_fields value.
func ParseTemplate(s string) Template {
	return Template{fields: ParseFields(s)}
}

// Empty reports whether the template sets nothing.
func (t Template) Empty() bool { return len(t.fields) == 0 }

// ApplyTo expands each field with v and sets it in dst, in order. As in
// Dovecot, %h in a later field sees a "home" set by an earlier one.
func (t Template) ApplyTo(dst *Fields, v Vars) {
	for _, kv := range t.fields {
		vv := v
		if h, ok := dst.Get("home"); ok {
			vv.Home = h
		}
		dst.Set(kv.Key, Expand(kv.Value, vv))
	}
}

// check reports unknown %variables in the template's values.
func (t Template) check(setting string) error {
	for _, kv := range t.fields {
		if err := checkTemplate(setting+" "+kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}
