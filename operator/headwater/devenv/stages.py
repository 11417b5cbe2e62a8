"""kwok Stage objects: how simulated nodes, pods and volumes move through their lives.

kwok itself does nothing without stages. These are written for Headwater's needs and
loaded from kwok's config file (not as CRDs, so nothing has to be installed in the
cluster first and a restart always picks up the current set):

Nodes
  ``node-initialize`` marks a new node Ready with generous capacity and the InternalIP
  from its ``devenv.headwater.dev/internal-ip`` annotation;
  ``node-heartbeat`` refreshes the conditions every ~5 min like a kubelet's status
  report (liveness itself comes from the node Lease, which kwok renews).
Pods
  ``pod-ready`` turns a scheduled pod Running/Ready; ``pod-complete`` lets pods owned
  by a Job finish with exit code 0 (so Jobs and CronJob runs succeed); ``pod-fail``
  does the same with a non-zero code when the pod asks for it; ``pod-delete`` removes
  terminating pods, as a kubelet would once containers stopped.
Volumes
  ``pvc-provision`` plays an external provisioner for the ``standard`` StorageClass:
  it creates a PV pre-bound to the claim, and kube-controller-manager's real PV
  binder completes the binding; ``pv-reclaim`` deletes released PVs.

Per-pod knobs (annotations on the pod template), for tests of slow or failing work:
``devenv.headwater.dev/run-for`` (Go duration, default 1s) and
``devenv.headwater.dev/exit-code`` (integer; non-zero makes the pod fail).
"""

from __future__ import annotations

RUN_FOR_ANNOTATION = "devenv.headwater.dev/run-for"
EXIT_CODE_ANNOTATION = "devenv.headwater.dev/exit-code"
NODE_ANNOTATION = "kwok.x-k8s.io/node"
NODE_ANNOTATION_VALUE = "fake"
NODE_IP_ANNOTATION = "devenv.headwater.dev/internal-ip"
STORAGE_CLASS = "standard"
PROVISIONER = "devenv.headwater.dev/kwok"

_NODE_STAGES = """
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ["True"]
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $ip := NodeIP }}
      {{ with .metadata.annotations }}
      {{ with index . "@NODE_IP_ANNOTATION@" }}{{ $ip = . }}{{ end }}
      {{ end }}
      conditions:
      {{ range NodeConditions }}
      - type: {{ .type | Quote }}
        status: {{ .status | Quote }}
        reason: {{ .reason | Quote }}
        message: {{ .message | Quote }}
        lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
      {{ end }}
      addresses:
      - type: InternalIP
        address: {{ $ip | Quote }}
      - type: Hostname
        address: {{ .metadata.name | Quote }}
      capacity:
        cpu: "1000"
        memory: 1Ti
        pods: "10000"
        ephemeral-storage: 10Ti
      allocatable:
        cpu: "1000"
        memory: 1Ti
        pods: "10000"
        ephemeral-storage: 10Ti
      nodeInfo:
        architecture: amd64
        operatingSystem: linux
        osImage: headwater-devenv
        kernelVersion: {{ printf "kwok-%s" Version | Quote }}
        kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
        kubeProxyVersion: {{ printf "kwok-%s" Version | Quote }}
        containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
        machineID: ""
        systemUUID: ""
        bootID: ""
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-heartbeat
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: In
      values: ["True"]
  delay:
    durationMilliseconds: 300000
    jitterDurationMilliseconds: 320000
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - type: {{ .type | Quote }}
        status: {{ .status | Quote }}
        reason: {{ .reason | Quote }}
        message: {{ .message | Quote }}
        lastHeartbeatTime: {{ $now | Quote }}
      {{ end }}
"""

# Container statuses shared by the "finished" stages; {{ $code }} is set by each.
_TERMINATED_STATUSES = """
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: false
        started: false
        restartCount: 0
        state:
          terminated:
            exitCode: {{ $code }}
            reason: {{ if eq $code 0 }}Completed{{ else }}Error{{ end }}
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
      {{ end }}
      conditions:
      - type: Ready
        status: "False"
        reason: PodCompleted
        lastTransitionTime: {{ $now | Quote }}
      - type: ContainersReady
        status: "False"
        reason: PodCompleted
        lastTransitionTime: {{ $now | Quote }}
"""

_JOB_POD_SELECTOR = """
    - key: .metadata.deletionTimestamp
      operator: DoesNotExist
    - key: .status.phase
      operator: In
      values: [Running]
    - key: .metadata.ownerReferences.[].kind
      operator: In
      values: [Job]
"""

_RUN_FOR_DELAY = f"""
  delay:
    durationMilliseconds: 1000
    durationFrom:
      expressionFrom: '.metadata.annotations["{RUN_FOR_ANNOTATION}"]'
"""

_POD_STAGES = (
    """
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - key: .metadata.deletionTimestamp
      operator: DoesNotExist
    - key: .status.phase
      operator: In
      values: [Pending]
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ["True"]
  next:
    statusTemplate: |
      {{ $now := Now }}
      phase: Running
      startTime: {{ $now | Quote }}
      conditions:
      {{ range list "PodReadyToStartContainers" "Initialized" "ContainersReady" "Ready" }}
      - type: {{ . }}
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      {{ end }}
      {{ range .spec.readinessGates }}
      - type: {{ .conditionType | Quote }}
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: true
        started: true
        restartCount: 0
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        restartCount: 0
        {{ if eq .restartPolicy "Always" }}
        ready: true
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
        {{ else }}
        ready: true
        state:
          terminated:
            exitCode: 0
            reason: Completed
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
        {{ end }}
      {{ end }}
      {{ with NodeIPWith .spec.nodeName }}
      hostIP: {{ . | Quote }}
      hostIPs:
      - ip: {{ . | Quote }}
      {{ end }}
      {{ $hostNet := or .spec.hostNetwork false }}
      {{ $uid := or .metadata.uid "" }}
      {{ with PodIPWith .spec.nodeName $hostNet $uid .metadata.name .metadata.namespace }}
      podIP: {{ . | Quote }}
      podIPs:
      - ip: {{ . | Quote }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:"""
    + _JOB_POD_SELECTOR
    + f"""    - key: '.metadata.annotations["{EXIT_CODE_ANNOTATION}"]'
      operator: DoesNotExist
"""
    + _RUN_FOR_DELAY
    + """  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $code := 0 }}
      phase: Succeeded"""
    + _TERMINATED_STATUSES
    + """---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-fail
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:"""
    + _JOB_POD_SELECTOR
    + f"""    - key: '.metadata.annotations["{EXIT_CODE_ANNOTATION}"]'
      operator: Exists
"""
    + _RUN_FOR_DELAY
    + f"""  next:
    statusTemplate: |
      {{{{ $now := Now }}}}
      {{{{ $code := index .metadata.annotations "{EXIT_CODE_ANNOTATION}" | atoi }}}}
      phase: {{{{ if eq $code 0 }}}}Succeeded{{{{ else }}}}Failed{{{{ end }}}}"""
    + _TERMINATED_STATUSES
    + """---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - key: .metadata.deletionTimestamp
      operator: Exists
  next:
    delete: true
"""
)

_VOLUME_STAGES = f"""
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pvc-provision
spec:
  resourceRef: {{apiGroup: v1, kind: PersistentVolumeClaim}}
  selector:
    matchExpressions:
    - cel:
        expression: >-
          has(self.spec.storageClassName) && self.spec.storageClassName == '{STORAGE_CLASS}'
    - cel:
        expression: "!has(self.metadata.deletionTimestamp)"
    - cel:
        expression: "!has(self.spec.volumeName) || self.spec.volumeName == ''"
  steps:
  - apply:
      template: |
        apiVersion: v1
        kind: PersistentVolume
        metadata:
          name: pvc-{{{{ .metadata.uid }}}}
          annotations:
            pv.kubernetes.io/provisioned-by: {PROVISIONER}
        spec:
          storageClassName: {STORAGE_CLASS}
          persistentVolumeReclaimPolicy: Delete
          volumeMode: {{{{ or .spec.volumeMode "Filesystem" | Quote }}}}
          accessModes:
          {{{{ range .spec.accessModes }}}}
          - {{{{ . | Quote }}}}
          {{{{ end }}}}
          capacity:
            storage: {{{{ .spec.resources.requests.storage | Quote }}}}
          claimRef:
            apiVersion: v1
            kind: PersistentVolumeClaim
            namespace: {{{{ .metadata.namespace | Quote }}}}
            name: {{{{ .metadata.name | Quote }}}}
            uid: {{{{ .metadata.uid | Quote }}}}
          hostPath:
            path: /var/lib/headwater-devenv/pvc-{{{{ .metadata.uid }}}}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pv-reclaim
spec:
  resourceRef: {{apiGroup: v1, kind: PersistentVolume}}
  selector:
    matchExpressions:
    - cel:
        expression: >-
          has(self.spec.storageClassName) && self.spec.storageClassName == '{STORAGE_CLASS}'
    - cel:
        expression: "!has(self.metadata.deletionTimestamp)"
    - cel:
        expression: "self.spec.persistentVolumeReclaimPolicy == 'Delete'"
    - cel:
        expression: "has(self.status.phase) && self.status.phase == 'Released'"
  steps:
  - delete: true
"""


def kwok_stages_yaml() -> str:
    """All stages as one multi-document YAML string for kwok's ``--config``."""
    docs = [
        _NODE_STAGES.replace("@NODE_IP_ANNOTATION@", NODE_IP_ANNOTATION),
        _POD_STAGES,
        _VOLUME_STAGES,
    ]
    return "---\n".join(doc.strip() + "\n" for doc in docs)
