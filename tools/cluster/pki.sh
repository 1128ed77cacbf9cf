# Certificates and kubeconfigs of the single-node cluster (sourced by up.sh): one CA, a serving certificate
# for the API server and the kubelet, a client certificate per component, the service-account key pair.
# shellcheck shell=bash

# pki_leaf NAME SUBJECT [SAN]: an EC key and a certificate signed by the cluster's CA
pki_leaf() {
	local dir=$CLUSTER_STATE/pki name=$1 subject=$2 san=${3:-}
	openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name.key" 2>/dev/null
	local extensions=(-addext "basicConstraints=critical,CA:FALSE")
	if [ -n "$san" ]; then
		extensions+=(-addext "subjectAltName=$san" -addext "extendedKeyUsage=serverAuth,clientAuth")
	else
		extensions+=(-addext "extendedKeyUsage=clientAuth")
	fi
	openssl req -new -key "$dir/$name.key" -subj "$subject" "${extensions[@]}" -out "$dir/$name.csr" 2>/dev/null
	openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
		-days 30 -copy_extensions copyall -out "$dir/$name.crt" 2>/dev/null
	rm "$dir/$name.csr"
}

# pki_kubeconfig NAME SERVER FILE: a kubeconfig for the client certificate NAME against SERVER
pki_kubeconfig() {
	local dir=$CLUSTER_STATE/pki
	cat > "$3" <<-EOF
		apiVersion: v1
		kind: Config
		clusters:
		- name: physlite-cluster
		  cluster:
		    server: $2
		    certificate-authority-data: $(base64 -w0 < "$dir/ca.crt")
		users:
		- name: $1
		  user:
		    client-certificate-data: $(base64 -w0 < "$dir/$1.crt")
		    client-key-data: $(base64 -w0 < "$dir/$1.key")
		contexts:
		- name: physlite-cluster
		  context: {cluster: physlite-cluster, user: $1}
		current-context: physlite-cluster
	EOF
	chmod 600 "$3"
}

# pki_create: every certificate and kubeconfig the components use, in $CLUSTER_STATE/pki
pki_create() {
	local dir=$CLUSTER_STATE/pki inside=https://$NODE_IP:6443
	mkdir -p "$dir"
	chmod 700 "$dir"
	openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key" 2>/dev/null
	openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=physlite-cluster-ca" -days 30 \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out "$dir/ca.crt" 2>/dev/null
	local names=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
	names+=,DNS:kubernetes.default.svc.cluster.local,DNS:localhost
	pki_leaf apiserver "/CN=kube-apiserver" "$names,IP:127.0.0.1,IP:$NODE_IP,IP:$API_SERVICE_IP"
	pki_leaf kubelet-serving "/CN=$NODE_NAME" "DNS:$NODE_NAME,IP:$NODE_IP"
	pki_leaf apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
	pki_leaf admin "/O=system:masters/CN=physlite-cluster-admin"
	pki_leaf controller-manager "/CN=system:kube-controller-manager"
	pki_leaf scheduler "/CN=system:kube-scheduler"
	pki_leaf kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
	pki_leaf kube-proxy "/CN=system:kube-proxy"
	pki_leaf kube-router "/CN=system:kube-router"
	openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
	openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
	for component in controller-manager scheduler kubelet kube-proxy kube-router; do
		pki_kubeconfig "$component" "$inside" "$dir/$component.kubeconfig"
	done
	pki_kubeconfig admin "$inside" "$dir/admin-inside.kubeconfig"
	mkdir -p "$CLUSTER_OUT"
	pki_kubeconfig admin "https://127.0.0.1:$CLUSTER_API_PORT" "$KUBECONFIG_ADMIN"
}
