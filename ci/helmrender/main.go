// helmrender: renders a Helm chart the way `helm template` does, without
// helm (Debian has no helm binary), and checks the rendered manifests.
//
// Rendering uses Go's text/template with sprig, as Helm's engine does, plus
// Helm's own functions (include, tpl, required, toYaml, fromYaml, toJson,
// lookup); missing keys render as empty, templates whose names start with
// "_" are partials, and .Release, .Chart, .Capabilities and .Template are
// filled as for `helm template --namespace NS NAME CHART`.
//
//	helmrender -chart helm/mailfleet [-f values.yaml]... [-name R] [-namespace NS] [-o out.yaml] [-check]
//	helmrender -check-only manifests.yaml      (checks a rendered stream)
//
// -check validates every document: required fields, labels, selectors that
// match pod labels, probes, resources, securityContext, references between
// objects (Services, claims, ConfigMaps, Secrets, HPA targets,
// ServiceMonitor selectors), LoadBalancers that keep client addresses, and
// secrets named by -only-in (NAME=COMPONENT) mounted only into that component.
// Exit status: 0 rendered (and valid), 1 invalid, 2 usage or render error.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	sprig "github.com/Masterminds/sprig/v3"
	yaml "gopkg.in/yaml.v2"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// normalize turns yaml.v2's map[interface{}]interface{} into JSON-like maps.
func normalize(v interface{}) interface{} {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, val := range t {
			m[fmt.Sprint(k)] = normalize(val)
		}
		return m
	case map[string]interface{}:
		for k, val := range t {
			t[k] = normalize(val)
		}
		return t
	case []interface{}:
		for i := range t {
			t[i] = normalize(t[i])
		}
		return t
	}
	return v
}

func readYAML(file string) (map[string]interface{}, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var v interface{}
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if v == nil {
		return map[string]interface{}{}, nil
	}
	m, ok := normalize(v).(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("%s: not a mapping", file)
	}
	return m, nil
}

// mergeValues merges src into dst the way Helm coalesces -f files: maps
// merge key by key, anything else in src replaces dst.
func mergeValues(dst, src map[string]interface{}) {
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func toYAML(v interface{}) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

type apiVersions []string

func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

func render(chartDir string, valueFiles []string, name, namespace string) (map[string]string, error) {
	chart, err := readYAML(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	values, err := readYAML(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range valueFiles {
		v, err := readYAML(f)
		if err != nil {
			return nil, err
		}
		mergeValues(values, v)
	}
	chartName := fmt.Sprint(chart["name"])
	chartObj := map[string]interface{}{}
	for k, v := range chart {
		// Chart.yaml keys as Helm exposes them: .Chart.Name, .Chart.AppVersion.
		chartObj[strings.ToUpper(k[:1])+k[1:]] = v
	}

	root := template.New("gotpl").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	includeDepth := 0
	funcs["include"] = func(tname string, data interface{}) (string, error) {
		includeDepth++
		defer func() { includeDepth-- }()
		if includeDepth > 1000 {
			return "", fmt.Errorf("include %s: recursion too deep", tname)
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, tname, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, fmt.Errorf("%s", msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, fmt.Errorf("%s", msg)
		}
		return v, nil
	}
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		var v interface{}
		if err := yaml.Unmarshal([]byte(s), &v); err != nil {
			return map[string]interface{}{"Error": err.Error()}
		}
		m, _ := normalize(v).(map[string]interface{})
		return m
	}
	funcs["toJson"] = func(v interface{}) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	funcs["lookup"] = func(string, string, string, string) map[string]interface{} {
		return map[string]interface{}{} // as `helm template`: no cluster
	}
	root.Funcs(funcs)

	tdir := filepath.Join(chartDir, "templates")
	var names []string
	err = filepath.Walk(tdir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(tdir, p)
		tname := path.Join(chartName, "templates", filepath.ToSlash(rel))
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if _, err := root.New(tname).Parse(string(b)); err != nil {
			return fmt.Errorf("parse %s: %v", tname, err)
		}
		names = append(names, tname)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := map[string]string{}
	for _, tname := range names {
		base := path.Base(tname)
		if strings.HasPrefix(base, "_") {
			continue
		}
		top := map[string]interface{}{
			"Values": values,
			"Chart":  chartObj,
			"Release": map[string]interface{}{
				"Name": name, "Namespace": namespace, "Service": "Helm",
				"IsInstall": true, "IsUpgrade": false, "Revision": 1,
			},
			"Capabilities": map[string]interface{}{
				"APIVersions": apiVersions{"v1", "apps/v1", "autoscaling/v2", "networking.k8s.io/v1"},
				"KubeVersion": map[string]interface{}{"Version": "v1.29.0", "Major": "1", "Minor": "29"},
			},
			"Template": map[string]interface{}{"Name": tname, "BasePath": path.Join(chartName, "templates")},
			"Files":    map[string]interface{}{},
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, tname, top); err != nil {
			return nil, fmt.Errorf("render %s: %v", tname, err)
		}
		out[tname] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	return out, nil
}

// --- checks ------------------------------------------------------------------

type obj = map[string]interface{}

func get(v interface{}, keys ...string) interface{} {
	for _, k := range keys {
		m, ok := v.(obj)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v interface{}, keys ...string) string {
	s, _ := get(v, keys...).(string)
	return s
}

func list(v interface{}, keys ...string) []interface{} {
	l, _ := get(v, keys...).([]interface{})
	return l
}

func strMap(v interface{}) map[string]string {
	m := map[string]string{}
	if mm, ok := v.(obj); ok {
		for k, x := range mm {
			m[k] = fmt.Sprint(x)
		}
	}
	return m
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type doc struct {
	source string
	o      obj
}

func (d doc) id() string { return str(d.o, "kind") + "/" + str(d.o, "metadata", "name") }

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

type checker struct {
	docs     []doc
	problems []string
	onlyIn   map[string]string // secret name -> the only component that may mount it
}

func (c *checker) bad(d doc, format string, args ...interface{}) {
	c.problems = append(c.problems, fmt.Sprintf("%s (%s): %s", d.id(), d.source, fmt.Sprintf(format, args...)))
}

func (c *checker) find(kind, name string) *doc {
	for i := range c.docs {
		if str(c.docs[i].o, "kind") == kind && str(c.docs[i].o, "metadata", "name") == name {
			return &c.docs[i]
		}
	}
	return nil
}

func podSpecOf(d doc) obj {
	switch str(d.o, "kind") {
	case "Deployment", "StatefulSet", "DaemonSet", "Job":
		p, _ := get(d.o, "spec", "template", "spec").(obj)
		return p
	}
	return nil
}

func (c *checker) checkPod(d doc, pod obj, claimTemplates map[string]bool) {
	component := strMap(get(d.o, "spec", "template", "metadata", "labels"))["app.kubernetes.io/component"]
	if get(pod, "securityContext", "runAsNonRoot") != true {
		c.bad(d, "pod securityContext.runAsNonRoot is not true")
	}
	// The kubelet cannot verify runAsNonRoot against a user name in the
	// image: the pod must name a numeric user.
	if uid, ok := get(pod, "securityContext", "runAsUser").(int); !ok || uid == 0 {
		c.bad(d, "pod securityContext.runAsUser must be a non-zero number")
	}
	volumes := map[string]obj{}
	for _, v := range list(pod, "volumes") {
		vo, _ := v.(obj)
		volumes[str(vo, "name")] = vo
		c.checkVolumeRef(d, vo, component)
	}
	containers := append(list(pod, "initContainers"), list(pod, "containers")...)
	if len(list(pod, "containers")) == 0 {
		c.bad(d, "no containers")
	}
	for i, x := range containers {
		ct, _ := x.(obj)
		name := str(ct, "name")
		init := i < len(list(pod, "initContainers"))
		if name == "" || str(ct, "image") == "" {
			c.bad(d, "container %d: name and image are required", i)
		}
		if get(ct, "resources", "requests", "cpu") == nil || get(ct, "resources", "requests", "memory") == nil {
			c.bad(d, "container %s: resources.requests.cpu and .memory are required", name)
		}
		sc := get(ct, "securityContext")
		if get(sc, "allowPrivilegeEscalation") != false {
			c.bad(d, "container %s: securityContext.allowPrivilegeEscalation must be false", name)
		}
		if get(sc, "readOnlyRootFilesystem") != true {
			c.bad(d, "container %s: securityContext.readOnlyRootFilesystem must be true", name)
		}
		dropsAll := false
		for _, cap := range list(sc, "capabilities", "drop") {
			if cap == "ALL" {
				dropsAll = true
			}
		}
		if !dropsAll {
			c.bad(d, "container %s: securityContext.capabilities.drop must contain ALL", name)
		}
		ports := map[string]bool{}
		for _, p := range list(ct, "ports") {
			ports[str(p, "name")] = true
		}
		if !init {
			for _, probe := range []string{"livenessProbe", "readinessProbe"} {
				pr := get(ct, probe)
				if pr == nil {
					c.bad(d, "container %s: no %s", name, probe)
					continue
				}
				if port, ok := get(pr, "httpGet", "port").(string); ok && !ports[port] {
					c.bad(d, "container %s: %s uses port %q, which the container does not name", name, probe, port)
				}
			}
		}
		for _, m := range list(ct, "volumeMounts") {
			vn := str(m, "name")
			if volumes[vn] == nil && !claimTemplates[vn] {
				c.bad(d, "container %s: volumeMount %q has no volume", name, vn)
			}
		}
	}
}

// checkVolumeRef: referenced ConfigMaps, Secrets and claims exist (or are
// declared external), and restricted secrets stay in their component.
func (c *checker) checkVolumeRef(d doc, v obj, component string) {
	refs := [][2]string{}
	if n := str(v, "configMap", "name"); n != "" {
		refs = append(refs, [2]string{"ConfigMap", n})
	}
	if n := str(v, "secret", "secretName"); n != "" {
		refs = append(refs, [2]string{"Secret", n})
	}
	if n := str(v, "persistentVolumeClaim", "claimName"); n != "" {
		refs = append(refs, [2]string{"PersistentVolumeClaim", n})
	}
	for _, s := range list(v, "projected", "sources") {
		if n := str(s, "configMap", "name"); n != "" {
			refs = append(refs, [2]string{"ConfigMap", n})
		}
		if n := str(s, "secret", "name"); n != "" {
			refs = append(refs, [2]string{"Secret", n})
		}
	}
	for _, r := range refs {
		if r[0] == "Secret" {
			if only, ok := c.onlyIn[r[1]]; ok && only != component {
				c.bad(d, "secret %s is mounted into %s; it may be mounted only into %s", r[1], component, only)
			}
		}
		if c.find(r[0], r[1]) == nil && !externals[r[0]+"/"+r[1]] {
			c.bad(d, "volume %s refers to %s %s, which is not rendered (and not declared external)", str(v, "name"), r[0], r[1])
		}
	}
}

var externals = map[string]bool{}

func (c *checker) run() {
	seen := map[string]bool{}
	for _, d := range c.docs {
		kind, name := str(d.o, "kind"), str(d.o, "metadata", "name")
		if str(d.o, "apiVersion") == "" || kind == "" || name == "" {
			c.bad(d, "apiVersion, kind and metadata.name are required")
			continue
		}
		if seen[d.id()] {
			c.bad(d, "defined twice")
		}
		seen[d.id()] = true
		if len(name) > 63 || !dnsLabel.MatchString(name) {
			c.bad(d, "name %q is not a DNS label (lower case, digits, '-', at most 63)", name)
		}
		labels := strMap(get(d.o, "metadata", "labels"))
		for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by"} {
			if labels[l] == "" {
				c.bad(d, "label %s missing", l)
			}
		}
		switch kind {
		case "Deployment", "StatefulSet":
			sel := strMap(get(d.o, "spec", "selector", "matchLabels"))
			podLabels := strMap(get(d.o, "spec", "template", "metadata", "labels"))
			if len(sel) == 0 {
				c.bad(d, "spec.selector.matchLabels is empty")
			} else if !subset(sel, podLabels) {
				c.bad(d, "selector %v does not match the pod labels %v", sel, podLabels)
			}
			claims := map[string]bool{}
			for _, t := range list(d.o, "spec", "volumeClaimTemplates") {
				claims[str(t, "metadata", "name")] = true
				if get(t, "spec", "resources", "requests", "storage") == nil {
					c.bad(d, "volumeClaimTemplate %s without a storage request", str(t, "metadata", "name"))
				}
			}
			if kind == "StatefulSet" {
				sn := str(d.o, "spec", "serviceName")
				if sn == "" || c.find("Service", sn) == nil {
					c.bad(d, "serviceName %q is not a rendered Service", sn)
				}
			}
			c.checkPod(d, podSpecOf(d), claims)
		case "Service":
			sel := strMap(get(d.o, "spec", "selector"))
			if len(sel) == 0 {
				c.bad(d, "no selector")
				break
			}
			var pods []obj
			for _, w := range c.docs {
				if p := podSpecOf(w); p != nil && subset(sel, strMap(get(w.o, "spec", "template", "metadata", "labels"))) {
					pods = append(pods, p)
				}
			}
			if len(pods) == 0 {
				c.bad(d, "selector %v matches no pod template", sel)
				break
			}
			for _, p := range list(d.o, "spec", "ports") {
				tp, ok := get(p, "targetPort").(string)
				if !ok {
					continue
				}
				found := false
				for _, pod := range pods {
					for _, ct := range list(pod, "containers") {
						for _, cp := range list(ct, "ports") {
							if str(cp, "name") == tp {
								found = true
							}
						}
					}
				}
				if !found {
					c.bad(d, "targetPort %q is not a port name of the selected pods", tp)
				}
			}
			if str(d.o, "spec", "type") == "LoadBalancer" && str(d.o, "spec", "externalTrafficPolicy") != "Local" {
				c.bad(d, "LoadBalancer without externalTrafficPolicy: Local loses the client's address")
			}
		case "HorizontalPodAutoscaler":
			ref := get(d.o, "spec", "scaleTargetRef")
			target := c.find(str(ref, "kind"), str(ref, "name"))
			if target == nil {
				c.bad(d, "scaleTargetRef %s/%s is not rendered", str(ref, "kind"), str(ref, "name"))
			} else if get(target.o, "spec", "replicas") != nil {
				c.bad(d, "%s sets spec.replicas, which fights the autoscaler", target.id())
			}
		case "ServiceMonitor":
			sel := strMap(get(d.o, "spec", "selector", "matchLabels"))
			n := 0
			for _, s := range c.docs {
				if str(s.o, "kind") == "Service" && subset(sel, strMap(get(s.o, "metadata", "labels"))) {
					n++
					ok := false
					for _, p := range list(s.o, "spec", "ports") {
						for _, ep := range list(d.o, "spec", "endpoints") {
							if str(p, "name") == str(ep, "port") {
								ok = true
							}
						}
					}
					if !ok {
						c.bad(d, "%s has no port named as the endpoints", s.id())
					}
				}
			}
			if n == 0 {
				c.bad(d, "selector %v matches no Service", sel)
			}
		}
	}
}

func splitDocs(source, text string) ([]doc, error) {
	var docs []doc
	for i, part := range regexp.MustCompile(`(?m)^---\s*$`).Split(text, -1) {
		if strings.TrimSpace(part) == "" {
			continue
		}
		src := source
		if m := regexp.MustCompile(`(?m)^# Source: (\S+)`).FindStringSubmatch(part); m != nil {
			src = m[1]
		}
		var v interface{}
		if err := yaml.UnmarshalStrict([]byte(part), &v); err != nil {
			return nil, fmt.Errorf("%s: document %d is not valid YAML: %v", src, i, err)
		}
		if v == nil {
			continue
		}
		o, ok := normalize(v).(obj)
		if !ok {
			return nil, fmt.Errorf("%s: document %d is not a mapping", src, i)
		}
		docs = append(docs, doc{source: src, o: o})
	}
	return docs, nil
}

func main() {
	var valueFiles, onlyIn, external multiFlag
	chartDir := flag.String("chart", "", "chart directory")
	name := flag.String("name", "mailfleet", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	outFile := flag.String("o", "", "write the rendered manifests here (default stdout)")
	check := flag.Bool("check", false, "check the rendered manifests")
	checkOnly := flag.String("check-only", "", "check this manifest stream instead of rendering")
	flag.Var(&valueFiles, "f", "values file (repeatable, later ones win)")
	flag.Var(&onlyIn, "only-in", "SECRET=COMPONENT: the secret may be mounted only into that component (repeatable)")
	flag.Var(&external, "external", "KIND/NAME that exists outside the chart, e.g. Secret/mail-tls (repeatable)")
	flag.Parse()

	var stream string
	if *checkOnly != "" {
		b, err := os.ReadFile(*checkOnly)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helmrender:", err)
			os.Exit(2)
		}
		stream = string(b)
		*check = true
	} else {
		if *chartDir == "" {
			flag.Usage()
			os.Exit(2)
		}
		out, err := render(*chartDir, valueFiles, *name, *namespace)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helmrender:", err)
			os.Exit(2)
		}
		var names []string
		for n := range out {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, n := range names {
			if !strings.HasSuffix(n, ".yaml") && !strings.HasSuffix(n, ".yml") {
				continue // NOTES.txt: rendered (so it must execute), not a manifest
			}
			body := strings.TrimSpace(out[n])
			if body == "" {
				continue
			}
			for _, part := range regexp.MustCompile(`(?m)^---\s*$`).Split(body, -1) {
				if strings.TrimSpace(part) == "" {
					continue
				}
				fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", n, strings.Trim(part, "\n"))
			}
		}
		stream = b.String()
		if *outFile != "" {
			if err := os.WriteFile(*outFile, []byte(stream), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "helmrender:", err)
				os.Exit(2)
			}
		} else if !*check {
			fmt.Print(stream)
		}
	}
	if !*check {
		return
	}
	docs, err := splitDocs("stream", stream)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helmrender:", err)
		os.Exit(1)
	}
	c := &checker{docs: docs, onlyIn: map[string]string{}}
	for _, o := range onlyIn {
		kv := strings.SplitN(o, "=", 2)
		if len(kv) == 2 {
			c.onlyIn[kv[0]] = kv[1]
		}
	}
	for _, e := range external {
		externals[e] = true
	}
	c.run()
	for _, p := range c.problems {
		fmt.Fprintln(os.Stderr, "invalid:", p)
	}
	if len(c.problems) > 0 {
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "helmrender: %d manifests valid\n", len(docs))
}
