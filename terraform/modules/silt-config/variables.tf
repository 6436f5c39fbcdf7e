variable "name" {
  type        = string
  description = "Cluster name: the Silt cluster_id, the default etcd root and the stem of every resource name."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.name))
    error_message = "name must be 1-20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "partition" {
  type        = string
  description = "AWS partition of the ARNs (aws, aws-cn, aws-us-gov)."
  default     = "aws"

  validation {
    condition     = contains(["aws", "aws-cn", "aws-us-gov"], var.partition)
    error_message = "partition must be aws, aws-cn or aws-us-gov."
  }
}

variable "region" {
  type        = string
  description = "AWS region of the cluster (names the bucket and the SSM parameter ARNs)."

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like eu-west-1."
  }
}

variable "account_id" {
  type        = string
  description = "AWS account id (names the bucket and the SSM parameter ARNs)."

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "bucket_name" {
  type        = string
  description = "Bucket holding the data objects; null: silt-NAME-ACCOUNT-REGION."
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)."
  }
}

variable "prefix" {
  type        = string
  description = "Key prefix of the data objects in the bucket (no leading or trailing slash); the broker's IAM policy is limited to it."
  default     = "silt"

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.prefix))
    error_message = "prefix must be non-empty path segments of letters, digits, '.', '_' or '-', without leading or trailing slash."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key encrypting the bucket; null: SSE-S3. The brokers get kms:Decrypt and kms:GenerateDataKey on it only."
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-f0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "etcd_nodes" {
  type = list(object({
    name       = string
    private_ip = string
    volume_id  = string
  }))
  description = "The etcd members the cluster module runs (name, fixed private IP, EBS data volume id); empty when etcd_endpoints names an existing etcd."
  default     = []

  validation {
    condition     = contains([0, 1, 3, 5], length(var.etcd_nodes))
    error_message = "etcd_nodes must hold 1, 3 or 5 members (or none with etcd_endpoints)."
  }

  validation {
    condition     = alltrue([for n in var.etcd_nodes : can(regex("^[a-z0-9-]{1,63}$", n.name))]) && length(distinct([for n in var.etcd_nodes : n.name])) == length(var.etcd_nodes)
    error_message = "etcd member names must be distinct lowercase letters, digits or hyphens."
  }

  validation {
    condition = alltrue([
      for n in var.etcd_nodes : can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$", n.private_ip)) && can(cidrhost("${n.private_ip}/32", 0)) && can(regex("^vol-[a-f0-9]+$", n.volume_id))
    ])
    error_message = "etcd_nodes need an IPv4 private_ip and an EBS volume id (vol-...)."
  }
}

variable "etcd_endpoints" {
  type        = list(string)
  description = "HOST:PORT of every member of an existing etcd (3.4 or later); empty when etcd_nodes is given."
  default     = []

  validation {
    condition     = alltrue([for e in var.etcd_endpoints : can(regex("^[A-Za-z0-9.-]+:[0-9]{1,5}$", e)) && try(tonumber(split(":", e)[1]) <= 65535, false)])
    error_message = "etcd_endpoints must be HOST:PORT entries."
  }

  validation {
    condition     = (length(var.etcd_endpoints) > 0) != (length(var.etcd_nodes) > 0)
    error_message = "Give exactly one of etcd_nodes (etcd run by the module) and etcd_endpoints (an existing etcd)."
  }
}

variable "etcd_root" {
  type        = string
  description = "Key prefix of the cluster in etcd; null: the cluster name."
  default     = null

  validation {
    condition     = var.etcd_root == null || can(regex("^[A-Za-z0-9._-]+$", var.etcd_root))
    error_message = "etcd_root must be letters, digits, '.', '_' or '-'."
  }
}

variable "etcd_tls" {
  type = object({
    ca_parameter          = string
    client_cert_parameter = string
    client_key_parameter  = string
    server_cert_parameter = optional(string)
    server_key_parameter  = optional(string)
  })
  description = <<-EOT
    TLS between brokers and etcd: names of SSM parameters (SecureString for keys) holding PEM text.
    The brokers present the client certificate; etcd nodes run by the module present the server
    certificate (which must name every member's IP and allow serverAuth and clientAuth: it is the
    peer certificate too). null: plaintext.
  EOT
  default     = null

  validation {
    # A conditional, not ||: Terraform before 1.12 evaluates both sides.
    condition = var.etcd_tls == null ? true : alltrue([
      for p in compact(values(var.etcd_tls)) : can(regex("^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", p))
    ])
    error_message = "etcd_tls values must be SSM parameter names."
  }

  validation {
    condition = (var.etcd_tls == null || length(var.etcd_nodes) == 0 ? true :
    try(var.etcd_tls.server_cert_parameter != null && var.etcd_tls.server_key_parameter != null, false))
    error_message = "etcd run by the module needs etcd_tls.server_cert_parameter and server_key_parameter."
  }
}

variable "etcd_version" {
  type        = string
  description = "etcd release the module's etcd nodes run."
  default     = "3.5.17"

  validation {
    condition     = can(regex("^3\\.[4-9]\\.[0-9]+$", var.etcd_version))
    error_message = "etcd_version must be 3.4.x or later, like 3.5.17."
  }
}

variable "etcd_sha256" {
  type        = string
  description = "SHA-256 of the etcd release tarball, checked before it is installed; null: not checked."
  default     = null

  validation {
    condition     = var.etcd_sha256 == null || can(regex("^[a-f0-9]{64}$", var.etcd_sha256))
    error_message = "etcd_sha256 must be 64 lowercase hex digits."
  }
}

variable "architecture" {
  type        = string
  description = "CPU architecture of the instances: arm64 or x86_64."
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "silt_release_url" {
  type        = string
  description = "HTTPS URL of a Silt release tarball holding the silt binary (for architecture), installed as /usr/local/bin/silt."
  nullable    = false

  validation {
    condition     = can(regex("^https://[^[:space:]'\"\\\\]+$", var.silt_release_url))
    error_message = "silt_release_url must be an https:// URL without spaces or quotes."
  }
}

variable "silt_sha256" {
  type        = string
  description = "SHA-256 of the tarball at silt_release_url (64 lowercase hex digits), checked before it is installed."
  nullable    = false

  validation {
    condition     = can(regex("^[a-f0-9]{64}$", var.silt_sha256))
    error_message = "silt_sha256 must be 64 lowercase hex digits."
  }
}

variable "kafka_port" {
  type        = number
  description = "Port of the brokers' PLAINTEXT Kafka listener (the first listener: brokers reach each other over it)."
  default     = 9092

  validation {
    condition     = var.kafka_port >= 1024 && var.kafka_port <= 65535
    error_message = "kafka_port must be 1024-65535."
  }
}

variable "tls_listener" {
  type = object({
    port           = optional(number, 9093)
    cert_parameter = string
    key_parameter  = string
  })
  description = "A second, SSL Kafka listener: its port and the SSM parameters holding its PEM certificate chain and key. null: none."
  default     = null

  validation {
    condition     = var.tls_listener == null || try(var.tls_listener.port >= 1024 && var.tls_listener.port <= 65535 && var.tls_listener.port != var.kafka_port, false)
    error_message = "tls_listener.port must be 1024-65535 and differ from kafka_port."
  }
}

variable "admin_port" {
  type        = number
  description = "Port of the broker's admin HTTP server (/metrics for Prometheus, /health for the load balancer)."
  default     = 9644

  validation {
    condition     = var.admin_port >= 1024 && var.admin_port <= 65535 && var.admin_port != var.kafka_port
    error_message = "admin_port must be 1024-65535 and differ from kafka_port."
  }

  validation {
    condition     = var.tls_listener == null || try(var.tls_listener.port != var.admin_port, true)
    error_message = "admin_port must differ from tls_listener.port."
  }
}

variable "client_cidrs" {
  type        = list(string)
  description = "IPv4 CIDRs of the Kafka clients."

  validation {
    condition     = length(var.client_cidrs) > 0 && alltrue([for c in var.client_cidrs : can(cidrnetmask(c))])
    error_message = "client_cidrs must be one or more IPv4 CIDRs."
  }
}

variable "monitoring_cidrs" {
  type        = list(string)
  description = "IPv4 CIDRs allowed to the admin port (Prometheus); never 0.0.0.0/0."
  default     = []

  validation {
    condition     = alltrue([for c in var.monitoring_cidrs : can(cidrnetmask(c)) && !endswith(c, "/0")])
    error_message = "monitoring_cidrs must be IPv4 CIDRs narrower than /0."
  }
}

variable "load_balancer" {
  type        = bool
  description = "Whether a network load balancer serves bootstrap connections (its security group is then allowed to the brokers)."
  default     = false
}

variable "meta_lease_seconds" {
  type        = number
  description = "TTL of a broker's etcd lease: failover takes this plus a second or two."
  default     = 6

  validation {
    condition     = var.meta_lease_seconds >= 2 && var.meta_lease_seconds <= 60 && floor(var.meta_lease_seconds) == var.meta_lease_seconds
    error_message = "meta_lease_seconds must be a whole number from 2 to 60."
  }
}

variable "cache_memory_bytes" {
  type        = number
  description = "Memory tier of each broker's read cache."
  default     = 268435456

  validation {
    condition     = var.cache_memory_bytes >= 16777216
    error_message = "cache_memory_bytes must be at least 16 MiB."
  }
}
