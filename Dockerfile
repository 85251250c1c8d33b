# One image, two processes: `certwrangler webroot` and `certwrangler manager`.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
RUN npm ci --no-audit --no-fund && npm run build && npm prune --omit=dev

FROM node:22-bookworm-slim
ENV NODE_ENV=production DATA_DIR=/data WEBROOT_DIR=/var/www/acme PORT=8080
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN ln -s /app/dist/cli.js /usr/local/bin/certwrangler && chmod +x /app/dist/cli.js \
 && mkdir -p /data /var/www/acme && chown node:node /data /var/www/acme
USER node
VOLUME ["/data", "/var/www/acme"]
EXPOSE 8080
ENTRYPOINT ["certwrangler"]
CMD ["manager"]
