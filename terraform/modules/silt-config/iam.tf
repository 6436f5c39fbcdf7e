# IAM policy documents, least privilege: no wildcard action, no "*" resource.

locals {
  bucket_arn = "arn:${var.partition}:s3:::${local.names.bucket}"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "ec2.amazonaws.com" }
    }]
  })

  broker_statements = concat(
    [
      {
        Sid      = "ObjectsUnderPrefix"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        Resource = ["${local.bucket_arn}/${var.prefix}/*"]
      },
      {
        Sid       = "ListPrefix"
        Effect    = "Allow"
        Action    = ["s3:ListBucket"]
        Resource  = [local.bucket_arn]
        Condition = { StringLike = { "s3:prefix" = ["${var.prefix}/*"] } }
      },
    ],
    var.kms_key_arn == null ? [] : [{
      Sid      = "BucketKey"
      Effect   = "Allow"
      Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
      Resource = [var.kms_key_arn]
    }],
    local.tls_parameter_statements.broker,
  )

  # The etcd members read their TLS parameters; SecureStrings under
  # kms_key_arn need kms:Decrypt on it, granted only through SSM.
  etcd_statements = concat(
    local.tls_parameter_statements.etcd,
    var.kms_key_arn == null || length(local.etcd_tls_files) == 0 ? [] : [{
      Sid       = "TlsParametersKey"
      Effect    = "Allow"
      Action    = ["kms:Decrypt"]
      Resource  = [var.kms_key_arn]
      Condition = { StringEquals = { "kms:ViaService" = "ssm.${var.region}.amazonaws.com" } }
    }],
  )

  # Reading the TLS files' SSM parameters (SecureStrings under the AWS
  # managed key aws/ssm need no KMS grant; under kms_key_arn, the brokers'
  # BucketKey statement and the etcd members' TlsParametersKey cover them).
  tls_parameter_statements = {
    for role, files in { broker = local.broker_tls_files, etcd = local.etcd_tls_files } : role => length(files) == 0 ? [] : [{
      Sid    = "TlsParameters"
      Effect = "Allow"
      Action = ["ssm:GetParameter"]
      Resource = [
        for p in sort(distinct(values(files))) : "arn:${var.partition}:ssm:${var.region}:${var.account_id}:parameter/${trimprefix(p, "/")}"
      ]
    }]
  }

  broker_policy = jsonencode({ Version = "2012-10-17", Statement = local.broker_statements })
  etcd_policy   = length(local.etcd_statements) == 0 ? null : jsonencode({ Version = "2012-10-17", Statement = local.etcd_statements })
}
