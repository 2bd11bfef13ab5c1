//! The operations `/dynamodb` serves, parsed once from `x-amz-target`: every place that
//! acts on an operation matches on [`Operation`] exhaustively, so an operation added
//! here is added everywhere or does not compile.

/// One DynamoDB operation this endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateTable,
    DescribeTable,
    ListTables,
    DeleteTable,
    PutItem,
    GetItem,
    UpdateItem,
    DeleteItem,
    Query,
    Scan,
    BatchWriteItem,
    BatchGetItem,
    DescribeLimits,
    DescribeEndpoints,
    TagResource,
    UntagResource,
    ListTagsOfResource,
    UpdateTable,
    UpdateTimeToLive,
    DescribeTimeToLive,
    TransactWriteItems,
    TransactGetItems,
}

impl Operation {
    /// Every served operation; any other name is `UnknownOperationException`.
    pub const ALL: [Operation; 22] = [
        Operation::CreateTable,
        Operation::DescribeTable,
        Operation::ListTables,
        Operation::DeleteTable,
        Operation::PutItem,
        Operation::GetItem,
        Operation::UpdateItem,
        Operation::DeleteItem,
        Operation::Query,
        Operation::Scan,
        Operation::BatchWriteItem,
        Operation::BatchGetItem,
        Operation::DescribeLimits,
        Operation::DescribeEndpoints,
        Operation::TagResource,
        Operation::UntagResource,
        Operation::ListTagsOfResource,
        Operation::UpdateTable,
        Operation::UpdateTimeToLive,
        Operation::DescribeTimeToLive,
        Operation::TransactWriteItems,
        Operation::TransactGetItems,
    ];

    /// DynamoDB's name of the operation, as `x-amz-target` carries it after the prefix.
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateTable => "CreateTable",
            Operation::DescribeTable => "DescribeTable",
            Operation::ListTables => "ListTables",
            Operation::DeleteTable => "DeleteTable",
            Operation::PutItem => "PutItem",
            Operation::GetItem => "GetItem",
            Operation::UpdateItem => "UpdateItem",
            Operation::DeleteItem => "DeleteItem",
            Operation::Query => "Query",
            Operation::Scan => "Scan",
            Operation::BatchWriteItem => "BatchWriteItem",
            Operation::BatchGetItem => "BatchGetItem",
            Operation::DescribeLimits => "DescribeLimits",
            Operation::DescribeEndpoints => "DescribeEndpoints",
            Operation::TagResource => "TagResource",
            Operation::UntagResource => "UntagResource",
            Operation::ListTagsOfResource => "ListTagsOfResource",
            Operation::UpdateTable => "UpdateTable",
            Operation::UpdateTimeToLive => "UpdateTimeToLive",
            Operation::DescribeTimeToLive => "DescribeTimeToLive",
            Operation::TransactWriteItems => "TransactWriteItems",
            Operation::TransactGetItems => "TransactGetItems",
        }
    }

    /// The served operation named `name` (case-sensitive, as DynamoDB's is).
    pub fn parse(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_finds_every_operation_by_its_name_and_nothing_else() {
        for op in Operation::ALL {
            assert_eq!(Operation::parse(op.name()), Some(op));
        }
        for name in [
            "",
            "putitem",
            "ExecuteStatement",
            "PutItem ",
            "DynamoDB_20120810.PutItem",
        ] {
            assert_eq!(Operation::parse(name), None, "{name:?}");
        }
    }
}
