"""The names of the sample formats and scenarios, importable without numpy or Polars (the
command line lists them in its help)."""

FORMAT_NAMES = (
    "nginx-extended",
    "nginx-combined",
    "nginx-common",
    "apache-combined",
    "apache-common",
    "nginx-json",
    "traefik-clf",
    "traefik-json",
    "envoy-text",
    "envoy-json",
    "kong-json",
    "caddy-json",
    "haproxy-httplog",
    "aws-alb",
    "aws-elb-classic",
    "apipark-json",
    "istio-text",
    "envoy-gateway-json",
    "nginx-main",
    "ingress-nginx",
)
SCENARIO_NAMES = (
    "steady",
    "none-planted",
    "hot-document",
    "signup-surge",
    "order-states",
    "retry-storm",
    "deploy-spike",
    "bad-day",
)


class SampleError(ValueError):
    """A request the generator cannot honour (unknown format or scenario, too few lines)."""
