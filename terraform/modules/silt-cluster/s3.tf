# The bucket of the data objects. No expiry rule: Silt deletes its own
# objects (retention and garbage collection).

resource "aws_s3_bucket" "data" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice, not a default; the etcd metadata would have to be replicated with it.
  #checkov:skip=CKV_AWS_18:Server access logs need a log bucket the caller owns; CloudTrail data events are the alternative. Left to the deployment.
  #checkov:skip=CKV2_AWS_62:Nothing consumes event notifications of data objects.
  #checkov:skip=CKV_AWS_21:Versioning is optional (bucket_versioning), off by default: Silt writes each object once, create-only, and deletes only unreferenced ones, so versions would only keep deleted data.
  bucket        = module.config.names.bucket
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  bucket                  = aws_s3_bucket.data.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  #checkov:skip=CKV_AWS_145:SSE-KMS is used when kms_key_arn is given; SSE-S3 otherwise, by choice (no per-request KMS cost).
  bucket = aws_s3_bucket.data.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

# Only with bucket_versioning: "Disabled" cannot be set again on a bucket
# that was versioned, while destroying this resource suspends versioning.
resource "aws_s3_bucket_versioning" "data" {
  count  = var.bucket_versioning ? 1 : 0
  bucket = aws_s3_bucket.data.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_multipart_days
    }
  }

  # With versioning, what Silt deletes stays as noncurrent versions: expire them.
  dynamic "rule" {
    for_each = var.bucket_versioning ? [var.noncurrent_version_days] : []

    content {
      id     = "expire-noncurrent-versions"
      status = "Enabled"
      filter {}

      noncurrent_version_expiration {
        noncurrent_days = rule.value
      }

      expiration {
        expired_object_delete_marker = true
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.data]
}
