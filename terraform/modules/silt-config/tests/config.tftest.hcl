# The rendered broker configuration, etcd members and security group rules.

variables {
  name             = "test"
  region           = "eu-west-1"
  account_id       = "123456789012"
  bucket_name      = "my-silt"
  prefix           = "prod"
  etcd_endpoints   = ["10.0.0.11:2379", "10.0.0.12:2379", "10.0.0.13:2379"]
  silt_release_url = "https://example.com/silt.tar.gz"
  silt_sha256      = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
  client_cidrs     = ["10.0.0.0/16"]
  monitoring_cidrs = ["10.9.0.0/24"]
}

run "silt_toml" {
  command = plan

  assert {
    condition     = strcontains(output.silt_toml, "id = \"auto\"")
    error_message = "silt.toml does not allocate the broker id in etcd."
  }

  assert {
    condition     = strcontains(output.silt_toml, "durability = \"object\"")
    error_message = "silt.toml is not in object durability."
  }

  assert {
    condition     = strcontains(output.silt_toml, "object_store = \"s3://my-silt/prod\"")
    error_message = "silt.toml does not name the bucket and prefix."
  }

  assert {
    condition     = strcontains(output.silt_toml, "meta = \"etcd://10.0.0.11:2379,10.0.0.12:2379,10.0.0.13:2379/test\"")
    error_message = "silt.toml does not name every etcd member and the root."
  }

  assert {
    condition     = output.broker_environment.SILT_LISTENERS == "[{ name = \"PLAINTEXT\", listen = \"0.0.0.0:9092\", advertised = \"$${PRIVATE_IP}:9092\", protocol = \"PLAINTEXT\" }]"
    error_message = "The listener does not advertise the instance's private IP."
  }

  assert {
    condition     = output.broker_environment.SILT_BROKER__RACK == "$${AVAILABILITY_ZONE}"
    error_message = "The broker's rack is not its availability zone."
  }
}

run "etcd_over_tls_and_a_tls_listener" {
  command = plan

  variables {
    etcd_root = "silt-prod"
    etcd_tls = {
      ca_parameter          = "/silt/etcd/ca"
      client_cert_parameter = "/silt/etcd/client-cert"
      client_key_parameter  = "/silt/etcd/client-key"
    }
    tls_listener = { cert_parameter = "/silt/kafka/cert", key_parameter = "/silt/kafka/key" }
  }

  assert {
    condition = strcontains(output.silt_toml, join("", [
      "meta = \"etcd://10.0.0.11:2379,10.0.0.12:2379,10.0.0.13:2379/silt-prod",
      "?tls_ca=/run/credentials/silt.service/etcd-ca.pem",
      "&tls_cert=/run/credentials/silt.service/etcd-client.pem",
      "&tls_key=/run/credentials/silt.service/etcd-client.key\"",
    ]))
    error_message = "The etcd URL lacks the TLS files."
  }

  assert {
    condition     = strcontains(output.broker_environment.SILT_LISTENERS, "{ name = \"SSL\", listen = \"0.0.0.0:9093\", advertised = \"$${PRIVATE_IP}:9093\", protocol = \"SSL\"")
    error_message = "The TLS listener is missing."
  }

  assert {
    condition = alltrue([
      for f in ["etcd-ca.pem", "etcd-client.pem", "etcd-client.key", "listener.pem", "listener.key"] :
      strcontains(output.systemd_dropin, "LoadCredential=${f}:/etc/silt/tls/${f}")
    ])
    error_message = "The drop-in does not hand every TLS file to the broker."
  }

  assert {
    condition     = output.kafka_ports == [9092, 9093]
    error_message = "The TLS listener's port is not opened."
  }
}

run "module_run_etcd" {
  command = plan

  variables {
    etcd_endpoints = []
    etcd_nodes = [
      { name = "etcd-1", private_ip = "10.0.1.10", volume_id = "vol-0a1" },
      { name = "etcd-2", private_ip = "10.0.2.10", volume_id = "vol-0a2" },
      { name = "etcd-3", private_ip = "10.0.3.10", volume_id = "vol-0a3" },
    ]
  }

  assert {
    condition     = output.etcd_endpoints == tolist(["10.0.1.10:2379", "10.0.2.10:2379", "10.0.3.10:2379"])
    error_message = "The brokers do not reach every member."
  }

  assert {
    condition     = strcontains(output.etcd_user_data["etcd-2"], "--initial-cluster etcd-1=http://10.0.1.10:2380,etcd-2=http://10.0.2.10:2380,etcd-3=http://10.0.3.10:2380 ")
    error_message = "A member does not know the others."
  }

  assert {
    condition     = strcontains(output.etcd_user_data["etcd-2"], "nvme-Amazon_Elastic_Block_Store_vol0a2")
    error_message = "A member does not mount its own volume."
  }
}

run "etcd_and_admin_ports_never_open_to_the_world" {
  command = plan

  variables {
    load_balancer  = true
    etcd_endpoints = []
    etcd_nodes = [
      { name = "etcd-1", private_ip = "10.0.1.10", volume_id = "vol-1" },
    ]
  }

  assert {
    condition = alltrue([
      for r in values(output.security_group_rules) : r.cidr == null if contains([2379, 2380], r.port)
    ])
    error_message = "An etcd port is open to a CIDR instead of a security group."
  }

  assert {
    condition = alltrue([
      for r in values(output.security_group_rules) : r.cidr != "0.0.0.0/0" || (r.type == "egress" && r.port == 443)
    ])
    error_message = "0.0.0.0/0 is used for anything but outgoing HTTPS."
  }
}

run "monitoring_cidr_admin_rule" {
  command = plan

  assert {
    condition     = output.security_group_rules["broker-ingress-9644-10.9.0.0/24"].cidr == "10.9.0.0/24"
    error_message = "The monitoring CIDR cannot reach the admin port."
  }
}

run "exactly_one_etcd" {
  command = plan

  variables {
    etcd_nodes = [{ name = "etcd-1", private_ip = "10.0.1.10", volume_id = "vol-1" }]
  }

  expect_failures = [var.etcd_endpoints]
}

run "admin_port_not_open_to_the_world" {
  command = plan

  variables {
    monitoring_cidrs = ["0.0.0.0/0"]
  }

  expect_failures = [var.monitoring_cidrs]
}

run "release_binary" {
  command = plan

  assert {
    condition     = strcontains(output.broker_user_data, "download 'https://example.com/silt.tar.gz' 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' ")
    error_message = "The user data does not download the release with its checksum."
  }

  assert {
    condition     = strcontains(output.broker_user_data, "/usr/local/bin/silt\n") && !strcontains(output.broker_user_data, "docker")
    error_message = "The user data does not install the release binary alone."
  }

  assert {
    condition     = !strcontains(output.systemd_dropin, "ExecStart")
    error_message = "The drop-in changes the unit's command."
  }
}

run "release_url_must_be_https" {
  command = plan

  variables {
    silt_release_url = "http://example.com/silt.tar.gz"
  }

  expect_failures = [var.silt_release_url]
}

run "release_url_without_quotes" {
  command = plan

  variables {
    silt_release_url = "https://example.com/silt'.tar.gz"
  }

  expect_failures = [var.silt_release_url]
}

run "sha256_is_64_hex_digits" {
  command = plan

  variables {
    silt_sha256 = "e3b0c442"
  }

  expect_failures = [var.silt_sha256]
}

run "existing_etcd_on_its_own_port" {
  command = plan

  variables {
    etcd_endpoints = ["etcd-1.internal:2381", "etcd-2.internal:2381", "etcd-3.internal:2381"]
  }

  assert {
    condition     = [for r in values(output.security_group_rules) : r.port if r.peer == "etcd" || r.group == "etcd"] == [2381, 2381]
    error_message = "The brokers are not let in on the existing etcd's client port."
  }
}

run "admin_port_differs_from_the_tls_listener" {
  command = plan

  variables {
    tls_listener = { port = 9644, cert_parameter = "/silt/kafka/cert", key_parameter = "/silt/kafka/key" }
  }

  expect_failures = [var.admin_port]
}

run "etcd_member_survives_reboot_and_replacement" {
  command = plan

  variables {
    etcd_endpoints = []
    etcd_nodes = [
      { name = "etcd-1", private_ip = "10.0.1.10", volume_id = "vol-0a1" },
      { name = "etcd-2", private_ip = "10.0.2.10", volume_id = "vol-0a2" },
      { name = "etcd-3", private_ip = "10.0.3.10", volume_id = "vol-0a3" },
    ]
  }

  assert {
    condition     = strcontains(output.etcd_user_data["etcd-1"], "RequiresMountsFor=/var/lib/etcd/data")
    error_message = "etcd may start on the root volume before its data volume is mounted."
  }

  assert {
    condition = alltrue([
      for s in ["blkid -p \"$device\"", "2) mkfs.xfs \"$device\" ;;", "grep -q \" /var/lib/etcd \" /etc/fstab ||", "mountpoint -q /var/lib/etcd || mount"] :
      strcontains(output.etcd_user_data["etcd-1"], s)
    ])
    error_message = "The volume handling is not idempotent or may format a volume holding data."
  }

  assert {
    condition     = !strcontains(output.etcd_user_data["etcd-1"], "blkid \"$device\" || mkfs")
    error_message = "Any blkid failure formats the volume."
  }
}

run "etcd_nodes_are_checked" {
  command = plan

  variables {
    etcd_endpoints = []
    etcd_nodes     = [{ name = "etcd-1", private_ip = "10.0.1", volume_id = "vol-1" }]
  }

  expect_failures = [var.etcd_nodes]
}

run "broker_keeps_retrying_until_etcd_is_up" {
  command = plan

  assert {
    condition     = strcontains(output.systemd_dropin, "StartLimitIntervalSec=0")
    error_message = "systemd gives up on the broker while etcd comes up."
  }
}
