package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// manifestDir holds the Kubernetes manifests, relative to this package.
const manifestDir = "../../cluster/deploy/kubernetes"

// The types below hold the subset of the Kubernetes API the manifests use.
// They are decoded with KnownFields, so a field they do not declare (a typo,
// or a field added to a manifest without adding it here) fails the test.

type objectMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// intOrString is a Kubernetes IntOrString: a port number or a port name,
// a count or a percentage.
type intOrString string

type k8sKustomization struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Namespace  string   `yaml:"namespace"`
	Resources  []string `yaml:"resources"`
}

type k8sDeployment struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		Replicas int           `yaml:"replicas"`
		Selector labelSelector `yaml:"selector"`
		Strategy struct {
			Type          string `yaml:"type"`
			RollingUpdate struct {
				MaxSurge       intOrString `yaml:"maxSurge"`
				MaxUnavailable intOrString `yaml:"maxUnavailable"`
			} `yaml:"rollingUpdate"`
		} `yaml:"strategy"`
		Template struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     podSpec    `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
	} `yaml:"securityContext"`
	TopologySpreadConstraints []struct {
		MaxSkew           int           `yaml:"maxSkew"`
		TopologyKey       string        `yaml:"topologyKey"`
		WhenUnsatisfiable string        `yaml:"whenUnsatisfiable"`
		LabelSelector     labelSelector `yaml:"labelSelector"`
	} `yaml:"topologySpreadConstraints"`
	Containers []container `yaml:"containers"`
}

type container struct {
	Name            string          `yaml:"name"`
	Image           string          `yaml:"image"`
	ImagePullPolicy string          `yaml:"imagePullPolicy"`
	Args            []string        `yaml:"args"`
	Env             []envVar        `yaml:"env"`
	Ports           []containerPort `yaml:"ports"`
	ReadinessProbe  *probe          `yaml:"readinessProbe"`
	LivenessProbe   *probe          `yaml:"livenessProbe"`
	Resources       struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type containerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
	Protocol      string `yaml:"protocol"`
}

type probe struct {
	HTTPGet *struct {
		Path string      `yaml:"path"`
		Port intOrString `yaml:"port"`
	} `yaml:"httpGet"`
	InitialDelaySeconds int `yaml:"initialDelaySeconds"`
	PeriodSeconds       int `yaml:"periodSeconds"`
	TimeoutSeconds      int `yaml:"timeoutSeconds"`
	FailureThreshold    int `yaml:"failureThreshold"`
}

type k8sService struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		Type                     string            `yaml:"type"`
		ClusterIP                string            `yaml:"clusterIP"`
		PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
		Selector                 map[string]string `yaml:"selector"`
		Ports                    []struct {
			Name       string      `yaml:"name"`
			Port       int         `yaml:"port"`
			TargetPort intOrString `yaml:"targetPort"`
			Protocol   string      `yaml:"protocol"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sPodDisruptionBudget struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		MaxUnavailable intOrString   `yaml:"maxUnavailable"`
		Selector       labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type k8sSecret struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   objectMeta        `yaml:"metadata"`
	Type       string            `yaml:"type"`
	StringData map[string]string `yaml:"stringData"`
}

// manifests is every object in manifestDir, by kind.
type manifests struct {
	kustomization k8sKustomization
	files         []string // the YAML files other than kustomization.yaml
	deployments   []k8sDeployment
	services      []k8sService
	pdbs          []k8sPodDisruptionBudget
	secrets       []k8sSecret
}

// apiVersions is the API version each kind must be written with.
var apiVersions = map[string]string{
	"Kustomization":       "kustomize.config.k8s.io/v1beta1",
	"Deployment":          "apps/v1",
	"Service":             "v1",
	"PodDisruptionBudget": "policy/v1",
	"Secret":              "v1",
}

func loadManifests(t testing.TB, dir string) manifests {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	yml, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	require.NoError(t, err)
	require.Empty(t, yml, "manifests end in .yaml")
	var m manifests
	for _, path := range paths {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		name := filepath.Base(path)
		var head struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
		}
		require.NoError(t, yaml.Unmarshal(data, &head), "%s", name)
		want, ok := apiVersions[head.Kind]
		require.True(t, ok, "%s: kind %q is not one this test knows", name, head.Kind)
		require.Equal(t, want, head.APIVersion, "%s: apiVersion of a %s", name, head.Kind)
		switch head.Kind {
		case "Kustomization":
			require.Equal(t, "kustomization.yaml", name)
			decodeStrict(t, name, data, &m.kustomization)
			continue
		case "Deployment":
			m.deployments = append(m.deployments, decodeStrict(t, name, data, &k8sDeployment{}))
		case "Service":
			m.services = append(m.services, decodeStrict(t, name, data, &k8sService{}))
		case "PodDisruptionBudget":
			m.pdbs = append(m.pdbs, decodeStrict(t, name, data, &k8sPodDisruptionBudget{}))
		case "Secret":
			m.secrets = append(m.secrets, decodeStrict(t, name, data, &k8sSecret{}))
		}
		m.files = append(m.files, name)
	}
	return m
}

// decodeStrict decodes the one YAML document in data into v, failing on
// fields v does not declare, and returns *v.
func decodeStrict[T any](t testing.TB, name string, data []byte, v *T) T {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(v), "%s", name)
	var extra any
	require.ErrorIs(t, dec.Decode(&extra), io.EOF, "%s holds one object", name)
	return *v
}

// serveFlag is one flag of tickroom serve, as its help lists it.
type serveFlag struct {
	env, def string
}

var helpFlagRE = regexp.MustCompile(`(?m)^\s+--([a-z0-9-]+) \((TICKROOM_[A-Z0-9_]+), default "(.*)"\)$`)

// serveFlags runs the binary's `serve -h` and returns its flags by name.
func serveFlags(t testing.TB, bin string) map[string]serveFlag {
	t.Helper()
	out, err := exec.Command(bin, "serve", "-h").CombinedOutput()
	require.NoError(t, err, "tickroom serve -h: %s", out)
	flags := map[string]serveFlag{}
	for _, m := range helpFlagRE.FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = serveFlag{env: m[2], def: m[3]}
	}
	require.Contains(t, flags, "gossip-listen", "serve -h lists the flags: %s", out)
	return flags
}

// containerFlags returns the serve flags c sets, by flag name, from its
// args and its TICKROOM_* environment variables. Values keep their
// $(VAR) references.
func containerFlags(c container, flags map[string]serveFlag) (map[string]string, error) {
	byEnv := map[string]string{}
	for name, f := range flags {
		byEnv[f.env] = name
	}
	set := map[string]string{}
	var errs []error
	for _, e := range c.Env {
		if !strings.HasPrefix(e.Name, "TICKROOM_") {
			continue
		}
		name, ok := byEnv[e.Name]
		if !ok {
			errs = append(errs, errors.New("env "+e.Name+": tickroom serve has no such variable"))
			continue
		}
		set[name] = e.Value // from a Secret when empty
	}
	for i := 0; i < len(c.Args); i++ {
		arg := c.Args[i]
		name, ok := strings.CutPrefix(arg, "--")
		if !ok {
			errs = append(errs, errors.New("arg "+strconv.Quote(arg)+" is not a --flag"))
			continue
		}
		name, value, hasValue := strings.Cut(name, "=")
		if !hasValue && i+1 < len(c.Args) && !strings.HasPrefix(c.Args[i+1], "--") {
			i++
			value = c.Args[i]
		}
		if _, ok := flags[name]; !ok {
			errs = append(errs, errors.New("arg --"+name+": tickroom serve has no such flag"))
			continue
		}
		if _, dup := set[name]; dup {
			errs = append(errs, errors.New("--"+name+" is set twice (args or "+flags[name].env+")"))
		}
		set[name] = value
	}
	return set, errors.Join(errs...)
}

// flagValue is what flag name is set to in set, else its default.
func flagValue(set map[string]string, flags map[string]serveFlag, name string) string {
	if v, ok := set[name]; ok {
		return v
	}
	return flags[name].def
}

func TestKubernetesManifests(t *testing.T) {
	flags := serveFlags(t, buildBinary(t))
	m := loadManifests(t, manifestDir)

	t.Run("kustomization lists every manifest", func(t *testing.T) {
		assert.ElementsMatch(t, m.files, m.kustomization.Resources)
	})

	require.Len(t, m.deployments, 1)
	dep := m.deployments[0]
	podLabels := dep.Spec.Template.Metadata.Labels
	require.Len(t, dep.Spec.Template.Spec.Containers, 1)
	c := dep.Spec.Template.Spec.Containers[0]

	set, err := containerFlags(c, flags)
	require.NoError(t, err, "the container's flags are tickroom serve's")
	value := func(name string) string { return flagValue(set, flags, name) }

	env := map[string]envVar{}
	for _, e := range c.Env {
		assert.NotContains(t, env, e.Name, "env %s is set once", e.Name)
		env[e.Name] = e
	}
	t.Run("args reference defined env vars", func(t *testing.T) {
		ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
		for _, arg := range c.Args {
			for _, r := range ref.FindAllStringSubmatch(arg, -1) {
				assert.Contains(t, env, r[1], "%s references $(%s)", arg, r[1])
			}
		}
		for name, path := range map[string]string{
			"POD_NAME": "metadata.name", "POD_IP": "status.podIP", "POD_NAMESPACE": "metadata.namespace",
		} {
			e := env[name]
			if assert.NotNil(t, e.ValueFrom, "%s from the downward API", name) && assert.NotNil(t, e.ValueFrom.FieldRef, name) {
				assert.Equal(t, path, e.ValueFrom.FieldRef.FieldPath, name)
			}
		}
	})

	// ports maps each container port's name and "number/protocol" to it.
	ports := map[string]containerPort{}
	for _, p := range c.Ports {
		assert.Contains(t, []string{"TCP", "UDP"}, p.Protocol, "port %s's protocol", p.Name)
		assert.NotContains(t, ports, p.Name, "port names are unique")
		ports[p.Name] = p
		ports[strconv.Itoa(p.ContainerPort)+"/"+p.Protocol] = p
	}
	// resolve finds the container port a Service or probe targets, by name
	// or by number.
	resolve := func(target intOrString, protocol string) (containerPort, bool) {
		if p, ok := ports[string(target)]; ok {
			return p, p.Protocol == protocol
		}
		p, ok := ports[string(target)+"/"+protocol]
		return p, ok
	}
	// listenPort is the port of a HOST:PORT flag, which the container must
	// expose over each protocol.
	listenPort := func(t *testing.T, flag string, protocols ...string) int {
		t.Helper()
		_, port, err := net.SplitHostPort(value(flag))
		require.NoError(t, err, "--%s=%s", flag, value(flag))
		for _, proto := range protocols {
			assert.Contains(t, ports, port+"/"+proto, "--%s's port is a container port over %s", flag, proto)
		}
		n, err := strconv.Atoi(port)
		require.NoError(t, err, "--%s", flag)
		return n
	}

	t.Run("container ports match the flags", func(t *testing.T) {
		game := listenPort(t, "listen", "TCP")
		admin := listenPort(t, "admin-listen", "TCP")
		gossip := listenPort(t, "gossip-listen", "TCP", "UDP")
		assert.Equal(t, 8080, game)
		assert.Equal(t, 8081, admin)
		assert.Equal(t, 7946, gossip)
		assert.Len(t, c.Ports, 4, "game, admin, gossip TCP and UDP")

		host, port, err := net.SplitHostPort(value("advertise"))
		require.NoError(t, err, "--advertise")
		assert.Equal(t, "$(POD_IP)", host, "--advertise names the pod's IP")
		assert.Equal(t, strconv.Itoa(gossip), port, "--advertise's port is the gossip port")

		u, err := url.Parse(value("public-url"))
		require.NoError(t, err, "--public-url")
		assert.Equal(t, "ws", u.Scheme)
		assert.Equal(t, "$(POD_IP):"+strconv.Itoa(game), u.Host, "--public-url is the pod's game port")
		assert.Equal(t, "/ws", u.Path)

		assert.Equal(t, "$(POD_NAME)", value("node-name"))
	})

	t.Run("secrets come from the Secret", func(t *testing.T) {
		_, isSet := set["admin-token"]
		assert.True(t, isSet, "--admin-listen=%s binds beyond loopback, which needs a token", value("admin-listen"))
		require.Len(t, m.secrets, 1)
		secret := m.secrets[0]
		for _, name := range []string{"TICKROOM_ADMIN_TOKEN", "TICKROOM_CLUSTER_KEY"} {
			e := env[name]
			if !assert.NotNil(t, e.ValueFrom, name) || !assert.NotNil(t, e.ValueFrom.SecretKeyRef, "%s from a Secret", name) {
				continue
			}
			assert.Equal(t, secret.Metadata.Name, e.ValueFrom.SecretKeyRef.Name, name)
			assert.Contains(t, secret.StringData, e.ValueFrom.SecretKeyRef.Key, "the Secret holds %s's key", name)
		}
	})

	t.Run("probes", func(t *testing.T) {
		for path, p := range map[string]*probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
			if !assert.NotNil(t, p, path) || !assert.NotNil(t, p.HTTPGet, "%s is an HTTP GET", path) {
				continue
			}
			assert.Equal(t, path, p.HTTPGet.Path)
			port, ok := resolve(p.HTTPGet.Port, "TCP")
			assert.True(t, ok, "%s probe's port %q is a container port", path, p.HTTPGet.Port)
			assert.Equal(t, listenPort(t, "admin-listen"), port.ContainerPort, "%s is probed on the admin port", path)
		}
	})

	t.Run("deployment", func(t *testing.T) {
		spec := dep.Spec
		assert.Equal(t, 3, spec.Replicas)
		assert.Equal(t, "RollingUpdate", spec.Strategy.Type)
		assert.Equal(t, intOrString("1"), spec.Strategy.RollingUpdate.MaxSurge)
		assert.Equal(t, intOrString("0"), spec.Strategy.RollingUpdate.MaxUnavailable)
		assertSelects(t, "Deployment", spec.Selector.MatchLabels, podLabels)

		timeout, err := time.ParseDuration(value("shutdown-timeout"))
		require.NoError(t, err, "--shutdown-timeout")
		drain, err := time.ParseDuration(value("drain-timeout"))
		require.NoError(t, err, "--drain-timeout")
		grace := time.Duration(spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
		assert.Greater(t, grace, drain+timeout, "terminationGracePeriodSeconds is above --drain-timeout plus --shutdown-timeout")
		assert.NotEmpty(t, c.Resources.Requests, "resource requests")
		assert.NotEmpty(t, c.Resources.Limits, "resource limits")
	})

	services := map[string]k8sService{}
	for _, s := range m.services {
		services[s.Metadata.Name] = s
		assert.Contains(t, []string{"", "ClusterIP", "LoadBalancer", "NodePort"}, s.Spec.Type, "Service %s's type", s.Metadata.Name)
		assertSelects(t, "Service "+s.Metadata.Name, s.Spec.Selector, podLabels)
		for _, p := range s.Spec.Ports {
			_, ok := resolve(p.TargetPort, p.Protocol)
			assert.True(t, ok, "Service %s's port %s targets container port %q over %s", s.Metadata.Name, p.Name, p.TargetPort, p.Protocol)
		}
	}

	t.Run("gossip service", func(t *testing.T) {
		s, ok := services["tickroom-gossip"]
		require.True(t, ok, "a Service tickroom-gossip")
		assert.Equal(t, "None", s.Spec.ClusterIP, "headless")
		assert.True(t, s.Spec.PublishNotReadyAddresses, "lists pods before they are ready")
		gossip := listenPort(t, "gossip-listen")
		var protocols []string
		for _, p := range s.Spec.Ports {
			if target, ok := resolve(p.TargetPort, p.Protocol); ok && p.Port == gossip && target.ContainerPort == gossip {
				protocols = append(protocols, p.Protocol)
			}
		}
		slices.Sort(protocols)
		assert.Equal(t, []string{"TCP", "UDP"}, protocols, "exposes the gossip port over TCP and UDP")

		want := net.JoinHostPort(s.Metadata.Name+".$(POD_NAMESPACE).svc.cluster.local", strconv.Itoa(gossip))
		assert.Equal(t, want, value("join"), "--join resolves the gossip Service")
	})

	t.Run("game service", func(t *testing.T) {
		s, ok := services["tickroom"]
		require.True(t, ok, "a Service tickroom")
		require.Len(t, s.Spec.Ports, 1)
		target, _ := resolve(s.Spec.Ports[0].TargetPort, s.Spec.Ports[0].Protocol)
		assert.Equal(t, listenPort(t, "listen"), target.ContainerPort, "the Service targets the game port")
	})

	t.Run("disruption budget", func(t *testing.T) {
		require.Len(t, m.pdbs, 1)
		assert.Equal(t, intOrString("1"), m.pdbs[0].Spec.MaxUnavailable)
		assertSelects(t, "PodDisruptionBudget", m.pdbs[0].Spec.Selector.MatchLabels, podLabels)
	})
}

// assertSelects checks that a non-empty selector matches labels.
func assertSelects(t *testing.T, what string, selector, labels map[string]string) {
	t.Helper()
	if !assert.NotEmpty(t, selector, "%s has a selector", what) {
		return
	}
	for k, v := range selector {
		assert.Equal(t, v, labels[k], "%s selects the pods' label %s", what, k)
	}
}
