locals {
  # Where the broker finds its TLS files: systemd's LoadCredential copies
  # them from /etc/silt/tls (root-only) into the unit's credentials directory.
  credentials_dir = "/run/credentials/silt.service"
  etcd_ports      = { client = 2379, peer = 2380 }

  names = {
    bucket         = coalesce(var.bucket_name, "silt-${var.name}-${var.account_id}-${var.region}")
    broker         = "silt-${var.name}-broker"
    etcd           = "silt-${var.name}-etcd"
    load_balancer  = "silt-${var.name}-nlb"
    vpc_endpoint   = "silt-${var.name}-s3"
    broker_role    = "silt-${var.name}-broker"
    etcd_role      = "silt-${var.name}-etcd"
    security_group = { for role in ["broker", "etcd", "load_balancer"] : role => "silt-${var.name}-${role}" }
  }

  # Tags Prometheus' EC2 service discovery filters brokers by.
  broker_tags = { "silt:cluster" = var.name, "silt:role" = "broker" }

  managed_etcd   = length(var.etcd_nodes) > 0
  etcd_scheme    = var.etcd_tls == null ? "http" : "https"
  etcd_endpoints = local.managed_etcd ? [for n in var.etcd_nodes : "${n.private_ip}:${local.etcd_ports.client}"] : var.etcd_endpoints
  # Client ports the brokers reach etcd on: 2379, or those of an existing
  # etcd's endpoints.
  etcd_client_ports = local.managed_etcd ? [local.etcd_ports.client] : distinct([for e in var.etcd_endpoints : tonumber(element(split(":", e), 1))])

  # SSM parameter => file under /etc/silt/tls (and credential name).
  broker_tls_files = merge(
    var.etcd_tls == null ? {} : {
      "etcd-ca.pem"     = var.etcd_tls.ca_parameter
      "etcd-client.pem" = var.etcd_tls.client_cert_parameter
      "etcd-client.key" = var.etcd_tls.client_key_parameter
    },
    var.tls_listener == null ? {} : {
      "listener.pem" = var.tls_listener.cert_parameter
      "listener.key" = var.tls_listener.key_parameter
    },
  )
  etcd_tls_files = var.etcd_tls == null || !local.managed_etcd ? {} : {
    "ca.pem"     = var.etcd_tls.ca_parameter
    "server.pem" = var.etcd_tls.server_cert_parameter
    "server.key" = var.etcd_tls.server_key_parameter
  }

  etcd_tls_query = var.etcd_tls == null ? "" : join("", [
    "?tls_ca=${local.credentials_dir}/etcd-ca.pem",
    "&tls_cert=${local.credentials_dir}/etcd-client.pem",
    "&tls_key=${local.credentials_dir}/etcd-client.key",
  ])
  etcd_url         = "etcd://${join(",", local.etcd_endpoints)}/${coalesce(var.etcd_root, var.name)}${local.etcd_tls_query}"
  object_store_url = "s3://${local.names.bucket}/${var.prefix}"

  silt_toml = templatefile("${path.module}/templates/silt.toml.tftpl", {
    name               = var.name
    admin_port         = var.admin_port
    object_store_url   = local.object_store_url
    etcd_url           = local.etcd_url
    meta_lease_seconds = var.meta_lease_seconds
    cache_memory_bytes = var.cache_memory_bytes
  })

  # Kafka listeners: their advertised addresses are known only at boot, so
  # they go to /etc/silt/env as SILT_LISTENERS (a TOML array), with
  # ${PRIVATE_IP} expanded by the user data.
  listeners = concat(
    [{ name = "PLAINTEXT", port = var.kafka_port, protocol = "PLAINTEXT", tls = "" }],
    var.tls_listener == null ? [] : [{
      name     = "SSL"
      port     = var.tls_listener.port
      protocol = "SSL"
      tls      = ", tls_cert = \"${local.credentials_dir}/listener.pem\", tls_key = \"${local.credentials_dir}/listener.key\""
    }],
  )
  kafka_ports = [for l in local.listeners : l.port]

  # Boot-time settings, written to /etc/silt/env; values may use the shell
  # variables ${PRIVATE_IP}, ${AWS_REGION} and ${AVAILABILITY_ZONE} the user
  # data reads from the instance metadata.
  broker_environment = {
    AWS_REGION = "$${AWS_REGION}"
    # The zone, reported to clients as the broker's rack.
    SILT_BROKER__RACK = "$${AVAILABILITY_ZONE}"
    SILT_LISTENERS = format("[%s]", join(", ", [
      for l in local.listeners :
      "{ name = \"${l.name}\", listen = \"0.0.0.0:${l.port}\", advertised = \"$${PRIVATE_IP}:${l.port}\", protocol = \"${l.protocol}\"${l.tls} }"
    ]))
  }

  systemd_dropin = templatefile("${path.module}/templates/silt-dropin.conf.tftpl", {
    credentials = keys(local.broker_tls_files)
  })

  broker_user_data = templatefile("${path.module}/templates/broker-user-data.sh.tftpl", {
    common           = local.user_data_functions
    silt_release_url = var.silt_release_url
    silt_sha256      = var.silt_sha256
    tls_files        = local.broker_tls_files
    silt_toml        = local.silt_toml
    environment      = local.broker_environment
    systemd_unit     = file("${path.module}/../../../deploy/systemd/silt.service")
    systemd_dropin   = local.systemd_dropin
  })

  etcd_user_data = {
    for node in var.etcd_nodes : node.name => templatefile("${path.module}/templates/etcd-user-data.sh.tftpl", {
      common        = local.user_data_functions
      node          = node
      cluster_token = local.names.etcd
      scheme        = local.etcd_scheme
      ports         = local.etcd_ports
      tls_files     = local.etcd_tls_files
      initial_cluster = join(",", [
        for n in var.etcd_nodes : "${n.name}=${local.etcd_scheme}://${n.private_ip}:${local.etcd_ports.peer}"
      ])
      release_url = format(
        "https://github.com/etcd-io/etcd/releases/download/v%s/etcd-v%s-linux-%s.tar.gz",
        var.etcd_version, var.etcd_version, var.architecture == "arm64" ? "arm64" : "amd64",
      )
      release_sha256 = var.etcd_sha256 == null ? "" : var.etcd_sha256
    })
  }

  # Shell functions both user data scripts use (IMDSv2, downloads, SSM).
  user_data_functions = file("${path.module}/templates/functions.sh")
}
