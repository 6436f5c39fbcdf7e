output "bootstrap_address" {
  description = "bootstrap.servers of the clients."
  value       = module.silt.bootstrap_address
}

output "bucket" {
  description = "Data bucket."
  value       = module.silt.bucket
}

output "etcd_endpoints" {
  description = "etcd members."
  value       = module.silt.etcd_endpoints
}

output "prometheus" {
  description = "How Prometheus finds the brokers."
  value       = module.silt.prometheus
}

output "etcd_url" {
  description = "storage.meta of the brokers (for `silt cluster move --meta`, from a host holding the client certificate)."
  value       = module.silt.etcd_url
}
