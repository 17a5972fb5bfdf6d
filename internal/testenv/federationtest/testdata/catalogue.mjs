// The catalogue subgraph on 127.0.0.1:$CATALOGUE_PORT.
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { typeDefs, resolvers } from './catalogue-schema.mjs';

const server = new ApolloServer({ schema: buildSubgraphSchema([{ typeDefs, resolvers }]) });
const { url } = await startStandaloneServer(server, {
  listen: { host: '127.0.0.1', port: Number(process.env.CATALOGUE_PORT) },
});
console.log(`catalogue subgraph at ${url}`);
