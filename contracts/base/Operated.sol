// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";

/// @title Operated
/// @notice Role administration shared by every Anchorline contract. The default admin (a
/// multisig in production) can only be handed over through OpenZeppelin's two-step, delayed
/// transfer, so a mistyped address cannot lose a contract.
abstract contract Operated is AccessControlDefaultAdminRules {
    /// @notice The platform operator: onboards participants, mints settlement tokens, pauses.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    /// @notice Who administers a contract: the delay of a hand-over of the default admin role,
    /// the default admin, and the first operator.
    struct Administration {
        uint48 adminTransferDelay;
        address admin;
        address operator;
    }

    error ZeroAddress();

    constructor(Administration memory administration)
        AccessControlDefaultAdminRules(administration.adminTransferDelay, administration.admin)
    {
        if (administration.operator == address(0)) revert ZeroAddress();
        _grantRole(OPERATOR_ROLE, administration.operator);
    }
}
