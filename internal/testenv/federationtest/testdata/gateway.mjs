// An Apollo gateway on 127.0.0.1:$GATEWAY_PORT over the supergraph in the
// file $SUPERGRAPH (compose.mjs's output, which names the subgraphs' URLs).
import { readFileSync } from 'node:fs';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { ApolloGateway } from '@apollo/gateway';

const gateway = new ApolloGateway({ supergraphSdl: readFileSync(process.env.SUPERGRAPH, 'utf8') });
const server = new ApolloServer({ gateway });
const { url } = await startStandaloneServer(server, {
  listen: { host: '127.0.0.1', port: Number(process.env.GATEWAY_PORT) },
});
console.log(`gateway at ${url}`);
