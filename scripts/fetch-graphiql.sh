#!/usr/bin/env bash
# Fetches the GraphiQL page's assets from the npm registry into graph/graphiql/
# (served from the binary, so GraphiQL works offline) and checks each against
# its pinned SHA-256, the same subresource-integrity hashes the page uses.
# Run it only to change versions: update the versions and hashes here and in
# graph/graphiql.go together.
set -euo pipefail
cd "$(dirname "$0")/../graph/graphiql"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fetch() { # package version file-in-tarball sha256
	local pkg=$1 ver=$2 file=$3 sum=$4 name=${1##*/}
	curl -sfL "https://registry.npmjs.org/$pkg/-/$name-$ver.tgz" | tar xz -C "$tmp" "package/$file"
	got="sha256-$(openssl dgst -sha256 -binary "$tmp/package/$file" | base64)"
	if [ "$got" != "$sum" ]; then
		echo "$pkg@$ver $file: $got, want $sum" >&2
		exit 1
	fi
	cp "$tmp/package/$file" "$(basename "$file")"
}
fetch graphiql 4.1.2 graphiql.min.js sha256-hnImuor1znlJkD/FOTL3jayfS/xsyNoP04abi8bFJWs=
fetch graphiql 4.1.2 graphiql.min.css sha256-MEh+B2NdMSpj9kexQNN3QKc8UzMrCXW/Sx/phcpuyIU=
fetch react 18.2.0 umd/react.production.min.js sha256-S0lp+k7zWUMk2ixteM6HZvu8L9Eh//OVrt+ZfbCpmgY=
fetch react-dom 18.2.0 umd/react-dom.production.min.js sha256-IXWO0ITNDjfnNXIu5POVfqlgYoop36bDzhodR6LW5Pc=
echo "graph/graphiql: assets match their pinned hashes"
