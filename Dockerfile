# syntax=docker/dockerfile:1
# Multi-stage build: a static binary on distroless, running as non-root.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -tags vtprotobuf \
      -ldflags "-s -w -X github.com/switchyard-llm/switchyard/internal/cli.version=${VERSION}" \
      -o /out/switchyard .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchyard /usr/local/bin/switchyard
USER nonroot:nonroot
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["serve"]
