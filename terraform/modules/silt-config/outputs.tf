output "names" {
  description = "Names of the cluster's resources (bucket, roles, security groups, ...)."
  value       = local.names
}

output "broker_tags" {
  description = "Tags every broker instance carries (Prometheus EC2 service discovery filters on them)."
  value       = local.broker_tags
}

output "object_store_url" {
  description = "storage.object_store of the brokers: s3://BUCKET/PREFIX."
  value       = local.object_store_url
}

output "etcd_endpoints" {
  description = "HOST:PORT of every etcd member."
  value       = local.etcd_endpoints
}

output "etcd_url" {
  description = "storage.meta of the brokers: etcd://MEMBERS/ROOT with the TLS files when TLS is on."
  value       = local.etcd_url
}

output "silt_toml" {
  description = "/etc/silt/silt.toml of every broker (static: boot-time settings are in broker_environment)."
  value       = local.silt_toml
}

output "broker_environment" {
  description = "/etc/silt/env of a broker; values refer to $${PRIVATE_IP}, $${AWS_REGION} and $${AVAILABILITY_ZONE}, expanded at boot."
  value       = local.broker_environment
}

output "systemd_dropin" {
  description = "The drop-in of silt.service: the TLS credentials (LoadCredential)."
  value       = local.systemd_dropin
}

output "broker_user_data" {
  description = "User data of the broker launch template."
  value       = local.broker_user_data
}

output "etcd_user_data" {
  description = "User data of each etcd member run by the module, by member name."
  value       = local.etcd_user_data
}

output "assume_role_policy" {
  description = "Trust policy of the instance roles (EC2)."
  value       = local.assume_role_policy
}

output "broker_policy" {
  description = "Inline policy of the broker role: the bucket prefix, the KMS key if any, the TLS parameters if any."
  value       = local.broker_policy
}

output "etcd_policy" {
  description = "Inline policy of the etcd role (its TLS parameters); null when it needs none."
  value       = local.etcd_policy
}

output "kafka_ports" {
  description = "Ports of the brokers' Kafka listeners."
  value       = local.kafka_ports
}

output "security_group_rules" {
  description = "Security group rules by key: group, type (ingress/egress), port, cidr or peer group, description."
  value       = local.security_group_rules
}
