# The IAM policy documents: least privilege, KMS and SSM only when used.

variables {
  name             = "test"
  region           = "eu-west-1"
  account_id       = "123456789012"
  prefix           = "prod/silt"
  etcd_endpoints   = ["10.0.0.11:2379", "10.0.0.12:2379", "10.0.0.13:2379"]
  silt_release_url = "https://example.com/silt.tar.gz"
  silt_sha256      = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
  client_cidrs     = ["10.0.0.0/16"]
}

run "no_wildcard_action_or_resource" {
  command = plan

  variables {
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    etcd_tls = {
      ca_parameter          = "/silt/etcd/ca"
      client_cert_parameter = "/silt/etcd/client-cert"
      client_key_parameter  = "/silt/etcd/client-key"
    }
  }

  assert {
    condition = alltrue([
      for s in jsondecode(output.broker_policy).Statement : alltrue([for a in flatten([s.Action]) : !strcontains(a, "*")])
    ])
    error_message = "A broker policy action has a wildcard."
  }

  assert {
    condition = alltrue([
      for s in jsondecode(output.broker_policy).Statement : alltrue([for r in flatten([s.Resource]) : r != "*" && !endswith(r, ":*")])
    ])
    error_message = "A broker policy resource is a wildcard."
  }
}

run "objects_and_listing_limited_to_the_prefix" {
  command = plan

  assert {
    condition = [for s in jsondecode(output.broker_policy).Statement : s.Resource if s.Sid == "ObjectsUnderPrefix"] == [
      ["arn:aws:s3:::silt-test-123456789012-eu-west-1/prod/silt/*"]
    ]
    error_message = "Object access is not limited to the prefix."
  }

  assert {
    condition = [for s in jsondecode(output.broker_policy).Statement : s if contains(flatten([s.Action]), "s3:ListBucket")] == [{
      Sid       = "ListPrefix"
      Effect    = "Allow"
      Action    = ["s3:ListBucket"]
      Resource  = ["arn:aws:s3:::silt-test-123456789012-eu-west-1"]
      Condition = { StringLike = { "s3:prefix" = ["prod/silt/*"] } }
    }]
    error_message = "s3:ListBucket is not limited to the prefix by an s3:prefix condition."
  }
}

run "no_kms_or_ssm_without_key_or_tls" {
  command = plan

  assert {
    condition = alltrue([
      for s in jsondecode(output.broker_policy).Statement : alltrue([
        for a in flatten([s.Action]) : !startswith(a, "kms:") && !startswith(a, "ssm:")
      ])
    ])
    error_message = "KMS or SSM permissions without a key or TLS."
  }

  assert {
    condition     = output.etcd_policy == null
    error_message = "The etcd role has a policy although it reads nothing."
  }
}

run "kms_key_only" {
  command = plan

  variables {
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }

  assert {
    condition = [for s in jsondecode(output.broker_policy).Statement : s if s.Sid == "BucketKey"] == [{
      Sid      = "BucketKey"
      Effect   = "Allow"
      Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
      Resource = ["arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
    }]
    error_message = "The KMS statement is not Decrypt and GenerateDataKey on the key alone."
  }
}

run "tls_parameters_only" {
  command = plan

  variables {
    etcd_endpoints = []
    etcd_nodes = [
      { name = "etcd-1", private_ip = "10.0.1.10", volume_id = "vol-1" },
      { name = "etcd-2", private_ip = "10.0.2.10", volume_id = "vol-2" },
      { name = "etcd-3", private_ip = "10.0.3.10", volume_id = "vol-3" },
    ]
    etcd_tls = {
      ca_parameter          = "/silt/etcd/ca"
      client_cert_parameter = "/silt/etcd/client-cert"
      client_key_parameter  = "/silt/etcd/client-key"
      server_cert_parameter = "/silt/etcd/server-cert"
      server_key_parameter  = "/silt/etcd/server-key"
    }
  }

  assert {
    condition = [for s in jsondecode(output.broker_policy).Statement : s.Resource if s.Sid == "TlsParameters"] == [[
      "arn:aws:ssm:eu-west-1:123456789012:parameter/silt/etcd/ca",
      "arn:aws:ssm:eu-west-1:123456789012:parameter/silt/etcd/client-cert",
      "arn:aws:ssm:eu-west-1:123456789012:parameter/silt/etcd/client-key",
    ]]
    error_message = "The brokers may read other parameters than their TLS files."
  }

  assert {
    condition = jsondecode(output.etcd_policy).Statement[0].Resource == [
      "arn:aws:ssm:eu-west-1:123456789012:parameter/silt/etcd/ca",
      "arn:aws:ssm:eu-west-1:123456789012:parameter/silt/etcd/server-cert",
      "arn:aws:ssm:eu-west-1:123456789012:parameter/silt/etcd/server-key",
    ]
    error_message = "The etcd nodes may read other parameters than their TLS files."
  }
}

run "etcd_reads_parameters_under_the_key_through_ssm_only" {
  command = plan

  variables {
    kms_key_arn    = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    etcd_endpoints = []
    etcd_nodes     = [{ name = "etcd-1", private_ip = "10.0.1.10", volume_id = "vol-1" }]
    etcd_tls = {
      ca_parameter          = "/silt/etcd/ca"
      client_cert_parameter = "/silt/etcd/client-cert"
      client_key_parameter  = "/silt/etcd/client-key"
      server_cert_parameter = "/silt/etcd/server-cert"
      server_key_parameter  = "/silt/etcd/server-key"
    }
  }

  assert {
    condition = [for s in jsondecode(output.etcd_policy).Statement : s if s.Sid == "TlsParametersKey"] == [{
      Sid       = "TlsParametersKey"
      Effect    = "Allow"
      Action    = ["kms:Decrypt"]
      Resource  = ["arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
      Condition = { StringEquals = { "kms:ViaService" = "ssm.eu-west-1.amazonaws.com" } }
    }]
    error_message = "The etcd members cannot decrypt their parameters, or may use the key beyond SSM."
  }
}
