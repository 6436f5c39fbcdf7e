output "bootstrap_address" {
  description = "HOST:PORT of the bootstrap load balancer (null without it: bootstrap from any broker's private IP and kafka_port; the prometheus output's tag filters find them)."
  value       = var.load_balancer ? "${aws_lb.bootstrap[0].dns_name}:${var.kafka_port}" : null
}

output "bucket" {
  description = "Name of the data bucket."
  value       = aws_s3_bucket.data.id
}

output "object_store_url" {
  description = "storage.object_store of the brokers."
  value       = module.config.object_store_url
}

output "etcd_endpoints" {
  description = "HOST:PORT of every etcd member."
  value       = module.config.etcd_endpoints
}

output "etcd_url" {
  description = "storage.meta of the brokers (also what `silt cluster move --meta` takes)."
  value       = module.config.etcd_url
}

output "autoscaling_group" {
  description = "Name of the brokers' autoscaling group."
  value       = aws_autoscaling_group.broker.name
}

output "prometheus" {
  description = "Where Prometheus finds the brokers (instances come and go): an ec2_sd_configs entry filtering on the brokers' tags, and the port."
  value = {
    autoscaling_group = aws_autoscaling_group.broker.name
    ec2_sd_config = {
      region  = data.aws_region.current.region
      port    = var.admin_port
      filters = [for key, value in module.config.broker_tags : { name = "tag:${key}", values = [value] }]
    }
  }
}

output "broker_role_arn" {
  description = "ARN of the brokers' instance role."
  value       = aws_iam_role.this["broker"].arn
}

output "security_group_ids" {
  description = "Security groups by role (broker, etcd, load_balancer)."
  value       = local.security_group_ids
}
